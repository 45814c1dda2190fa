//! The receiver thread: owns the listener while a user is connected and prints what the server pushes.
//!
//! The socket and its accept loop live in the library ([`client::listener`]); this file decides what a push
//! looks like on screen and tells the sender which acknowledgements arrived.

use std::io;

use client::listener::{ListenerHandle, PushListener, PushSource};
use crossbeam_channel::Sender;
use protocol::Push;

use crate::format::push_block;
use crate::output::Output;

/// Binds the listener and starts accepting pushes from `source`; pushes are printed through `output`, and the id
/// of every acknowledgement is also sent on `acks` (the sender waits for them before disconnecting).
pub fn start(output: Output, source: PushSource, acks: Sender<u32>) -> io::Result<ListenerHandle> {
    let listener = PushListener::bind()?;
    listener.spawn(source, move |push| {
        // Let a command in flight print its result first: the push it released may overtake it.
        let _gate = output.result_gate();
        output.block(&push_block(&push));
        if let Push::Ack { id } = push {
            // Only a hint for the sender's wait before DISCONNECT: if the channel is full, nothing is lost.
            let _ = acks.try_send(id);
        }
    })
}
