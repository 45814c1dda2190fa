//! What the sender thread reports: replies, send results, pushes and acknowledgements.

use protocol::Op;

use super::{App, Effect, Message, Net, Quit, Status, MAX_EARLY_ACKS};

impl App {
    pub(super) fn on_net(&mut self, net: Net) {
        match net {
            Net::Connecting { alias } => {
                if self.owner.as_deref() != Some(alias.as_str()) {
                    self.owner_before_connect = self.owner.clone();
                }
                self.switch_owner(&alias);
            }
            Net::Done { op, alias, ok, line } => self.on_done(op, alias, ok, line),
            Net::Sent { local, result } => self.on_sent(local, result),
            Net::Users(users) => {
                self.users_in_flight = false;
                // An answer that arrives after a DISCONNECT is already out of date.
                if self.connected {
                    self.online = users.into_iter().collect();
                }
            }
            Net::UsersFailed => self.users_in_flight = false,
            Net::NotConnected => {
                self.users_in_flight = false;
                if self.connected {
                    self.connected = false;
                    self.online.clear();
                    self.users_due = None;
                    self.error("the server has you as disconnected: /connect again");
                }
            }
            Net::Message { from, id, text, at } => {
                let open = self.open.is_some();
                let conversation = self.conversations.entry(from.clone()).or_default();
                conversation.push(Message { at, from: from.clone(), text, status: Status::Received(id), local: 0 });
                if !open {
                    self.open = Some(from.clone());
                }
                if self.open.as_ref() != Some(&from) {
                    conversation.unread += 1;
                }
                self.history_dirty = true;
                // Whoever writes to us is probably online: refresh the list now rather than in a few seconds.
                self.refresh_users();
            }
            Net::Ack { id } => self.on_ack(id),
            // Connected, we had a live session: it is over, and the program says so on a restored terminal.
            // Before that, it is just a command that failed (the shell opens no connection before the first
            // command either, so this is how a server that is down shows).
            Net::ServerLost(why) if self.connected => {
                if self.quit.is_none() {
                    self.request_quit(Quit::ServerLost(why));
                }
            }
            Net::ServerLost(why) => self.error(format!("cannot reach the {why}")),
            Net::Normalizer(state) => self.normalizer = state,
            Net::Stopped => self.stopped = true,
        }
    }

    fn switch_owner(&mut self, alias: &str) {
        if self.owner.as_deref() != Some(alias) {
            self.effects.push(Effect::LoadHistory(alias.to_owned()));
        }
    }

    fn on_done(&mut self, op: Op, alias: String, ok: bool, line: String) {
        match op {
            Op::Register if ok => {
                self.me = Some(alias.clone());
                // While connected, pushes keep coming for the connected alias: keep saving into its history.
                if !self.connected {
                    self.switch_owner(&alias);
                }
            }
            Op::Connect if ok => {
                self.me = Some(alias);
                self.connected = true;
                self.owner_before_connect = None;
                self.refresh_users();
            }
            Op::Connect => {
                if let Some(previous) = self.owner_before_connect.take() {
                    self.switch_owner(&previous);
                }
            }
            Op::Disconnect if self.me.as_ref() == Some(&alias) => {
                // The listener is closed whatever the reply.
                self.connected = false;
                self.online.clear();
                self.users_due = None;
            }
            Op::Unregister if ok && self.me.as_ref() == Some(&alias) => {
                self.me = None;
                self.connected = false;
                self.online.clear();
                self.users_due = None;
            }
            _ => {}
        }
        if ok {
            self.info(line);
        } else {
            self.error(line);
        }
    }

    fn on_sent(&mut self, local: u64, result: Result<(u32, String), String>) {
        let Some(m) = self.conversations.values_mut().flat_map(|c| c.messages.iter_mut()).find(|m| m.local == local)
        else {
            return;
        };
        m.status = match result {
            Ok((id, text)) => {
                m.text = text;
                match self.early_acks.iter().position(|&a| a == id) {
                    Some(i) => {
                        self.early_acks.remove(i);
                        Status::Delivered(id)
                    }
                    None => Status::Sent(id),
                }
            }
            Err(why) => Status::Failed(why),
        };
        self.history_dirty = true;
    }

    fn on_ack(&mut self, id: u32) {
        // Ids are per sender, so ours are unique but for a re-registration or a wrap: take the newest match.
        let newest = self
            .conversations
            .values_mut()
            .flat_map(|c| c.messages.iter_mut())
            .filter(|m| m.status == Status::Sent(id))
            .max_by_key(|m| (m.at, m.local));
        match newest {
            Some(m) => {
                m.status = Status::Delivered(id);
                self.history_dirty = true;
            }
            None => {
                let waiting =
                    self.conversations.values().flat_map(|c| &c.messages).any(|m| m.status == Status::Sending);
                if waiting {
                    if self.early_acks.len() == MAX_EARLY_ACKS {
                        self.early_acks.pop_front();
                    }
                    self.early_acks.push_back(id);
                }
            }
        }
    }
}
