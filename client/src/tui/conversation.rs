//! One conversation: the messages exchanged with one contact, and the delivery state of ours.

use std::collections::VecDeque;

/// Messages kept per conversation in memory; older ones are dropped first. The file on disk has its own bound
/// ([`super::history::MAX_HISTORY_BYTES`]).
pub const MAX_MESSAGES_PER_CONVERSATION: usize = 1000;

/// Where one of our messages stands (docs/protocol.md, sections 4.5 and 5.2: a SEND reply carries the id, the
/// acknowledgement for that id comes once the message was pushed to its recipient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A message we received, with the sender's id for it.
    Received(u32),
    /// Ours, on its way to the server (normalization, then SEND).
    Sending,
    /// Ours, accepted by the server under this id: `✓`.
    Sent(u32),
    /// Ours, delivered to the recipient: `✓✓`.
    Delivered(u32),
    /// Ours, refused or not sent, and why: `✗ why`.
    Failed(String),
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Unix time, seconds, when it was typed or received.
    pub at: i64,
    /// Who wrote it: the contact, or our own alias.
    pub from: String,
    pub text: String,
    pub status: Status,
    /// Our number for a message of ours sent in this run, to match the SEND result (0 otherwise).
    pub local: u64,
}

impl Message {
    pub fn is_ours(&self) -> bool {
        !matches!(self.status, Status::Received(_))
    }
}

/// The messages exchanged with one contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    pub messages: VecDeque<Message>,
    /// Messages received since the conversation was last open.
    pub unread: usize,
}

impl Conversation {
    pub fn push(&mut self, message: Message) {
        if self.messages.len() == MAX_MESSAGES_PER_CONVERSATION {
            self.messages.pop_front();
        }
        self.messages.push_back(message);
    }
}
