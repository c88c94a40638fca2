//! The threshold-based send queue: the pure heart of LiveKit's `DataChannelSender`
//! (`livekit/src/rtc_engine/dc_sender.rs`), with no tokio, webrtc or clock in it.
//!
//! LiveKit's rule, kept as is: hand payloads to the data channel **while the buffered
//! amount is at or under the low-water threshold**, so the channel holds at most the
//! threshold plus one payload. LiveKit keeps the counter in actor fields and learns of
//! progress through `on_buffered_amount_change(bytes_sent)`; here the counter lives in
//! [`SendQueue`] and takes two kinds of news:
//! - [`SendQueue::on_bytes_sent`]: a delta, as LiveKit's callback reports it (underflow is
//!   clamped to zero and logged, never a panic);
//! - [`SendQueue::on_buffered`]: the channel's own absolute figure, which is authoritative.
//!   webrtc-rs's `bufferedAmount` events arrive late and leave out bytes not yet
//!   packetized (measured: pacing on them alone let 40-300 MB pile up), so the pump adds on
//!   every send and reconciles with `outstanding_bytes()`.
//!
//! Must not import: tokio, webrtc, indicatif, `cli`.

use std::collections::VecDeque;

use crate::peer::Outbound;

/// Payloads waiting for the channel, and the buffered-amount bookkeeping that gates them.
#[derive(Debug)]
pub struct SendQueue {
    threshold: u64,
    buffered: u64,
    peak_buffered: u64,
    queue: VecDeque<Outbound>,
    queued_bytes: u64,
    max_queued_bytes: u64,
}

impl SendQueue {
    /// A queue that sends while the buffered amount is `<= threshold` bytes, and accepts
    /// new payloads while it holds fewer than `max_queued_bytes` (so the producer feeding
    /// it through a bounded channel is slowed down and memory stays flat).
    pub fn new(threshold: u64, max_queued_bytes: u64) -> Self {
        Self {
            threshold,
            buffered: 0,
            peak_buffered: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            max_queued_bytes: max_queued_bytes.max(1),
        }
    }

    /// The low-water threshold in bytes.
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// Sets the threshold (the adaptive mode moves it both ways; a receiver's cap lowers it).
    pub fn set_threshold(&mut self, threshold: u64) {
        self.threshold = threshold;
    }

    /// Bytes handed to the channel and not yet released, as far as we know.
    pub fn buffered(&self) -> u64 {
        self.buffered
    }

    /// The largest buffered amount seen (ours or the channel's).
    pub fn peak_buffered(&self) -> u64 {
        self.peak_buffered
    }

    /// Whether the channel may take another payload now (LiveKit's loop condition).
    pub fn can_send(&self) -> bool {
        self.buffered <= self.threshold
    }

    /// Whether the queue has room for another payload from the producer.
    pub fn has_room(&self) -> bool {
        self.queued_bytes < self.max_queued_bytes
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes still queued (not handed to the channel).
    pub fn unsent_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// Queues a payload (LiveKit `handle_enqueue_for_send`, minus the send, which the
    /// caller does by draining [`SendQueue::next_to_send`]).
    pub fn push(&mut self, payload: Outbound) {
        self.queued_bytes += payload.len() as u64;
        self.queue.push_back(payload);
    }

    /// One step of LiveKit's `send_until_threshold`: if the buffered amount is at or under
    /// the threshold, pops the next payload and counts it as buffered. The caller hands it
    /// to the channel.
    pub fn next_to_send(&mut self) -> Option<Outbound> {
        if !self.can_send() {
            return None;
        }
        let payload = self.queue.pop_front()?;
        let len = payload.len() as u64;
        self.queued_bytes -= len;
        self.buffered += len;
        self.peak_buffered = self.peak_buffered.max(self.buffered);
        Some(payload)
    }

    /// `bytes_sent` more bytes left the channel's buffer (LiveKit `handle_bytes_sent`).
    pub fn on_bytes_sent(&mut self, bytes_sent: u64) {
        if self.buffered < bytes_sent {
            tracing::error!(
                "buffered amount underflow: {} sent but only {} buffered; clamping to 0",
                bytes_sent,
                self.buffered
            );
            self.buffered = 0;
            return;
        }
        self.buffered -= bytes_sent;
    }

    /// The channel's own figure for its buffered amount; it replaces ours.
    pub fn on_buffered(&mut self, buffered: u64) {
        self.buffered = buffered;
        self.peak_buffered = self.peak_buffered.max(buffered);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn bin(n: usize) -> Outbound {
        Outbound::Binary(Bytes::from(vec![0u8; n]))
    }

    fn drain(q: &mut SendQueue) -> Vec<usize> {
        std::iter::from_fn(|| q.next_to_send()).map(|p| p.len()).collect()
    }

    #[test]
    fn sends_while_at_or_under_threshold_then_stops() {
        let mut q = SendQueue::new(100, 1 << 20);
        for _ in 0..5 {
            q.push(bin(40));
        }
        // 0 -> 40 -> 80 -> 120: the third is sent at 80 <= 100, then 120 > 100 stops.
        assert_eq!(drain(&mut q), vec![40, 40, 40]);
        assert_eq!(q.buffered(), 120);
        assert!(!q.can_send());
        assert_eq!(q.unsent_bytes(), 80);
    }

    #[test]
    fn buffered_exactly_at_threshold_still_sends() {
        let mut q = SendQueue::new(100, 1 << 20);
        q.push(bin(100));
        q.push(bin(1));
        q.push(bin(1));
        // At 100 == threshold LiveKit's `<=` still sends one more; at 101 it stops.
        assert_eq!(drain(&mut q), vec![100, 1]);
        assert_eq!(q.buffered(), 101);
    }

    #[test]
    fn zero_threshold_sends_one_payload_at_a_time() {
        let mut q = SendQueue::new(0, 1 << 20);
        q.push(bin(10));
        q.push(bin(10));
        assert_eq!(drain(&mut q), vec![10]);
        q.on_buffered(0);
        assert_eq!(drain(&mut q), vec![10]);
        assert!(q.is_empty());
    }

    #[test]
    fn payload_larger_than_threshold_is_sent_alone() {
        let mut q = SendQueue::new(16, 1 << 20);
        q.push(bin(1000));
        q.push(bin(1));
        assert_eq!(drain(&mut q), vec![1000], "a big payload must not block forever");
        assert_eq!(q.buffered(), 1000);
        q.on_bytes_sent(990);
        assert_eq!(drain(&mut q), vec![1]);
    }

    #[test]
    fn the_bound_holds_threshold_plus_one_payload() {
        let (threshold, chunk) = (1000u64, 64usize);
        let mut q = SendQueue::new(threshold, 1 << 20);
        for _ in 0..100 {
            q.push(bin(chunk));
        }
        while !q.is_empty() {
            drain(&mut q);
            assert!(q.buffered() <= threshold + chunk as u64);
            q.on_bytes_sent(chunk as u64 * 3);
        }
        assert!(q.peak_buffered() <= threshold + chunk as u64);
    }

    #[test]
    fn underflow_is_clamped_to_zero() {
        let mut q = SendQueue::new(100, 1 << 20);
        q.push(bin(10));
        drain(&mut q);
        q.on_bytes_sent(50);
        assert_eq!(q.buffered(), 0);
        assert!(q.can_send());
    }

    #[test]
    fn channel_figure_is_authoritative_in_both_directions() {
        let mut q = SendQueue::new(100, 1 << 20);
        q.push(bin(50));
        drain(&mut q);
        q.on_buffered(500); // bytes we did not count (e.g. control text) are still in flight
        assert!(!q.can_send());
        assert_eq!(q.peak_buffered(), 500);
        q.on_buffered(100);
        assert!(q.can_send());
    }

    #[test]
    fn room_is_bounded_by_queued_bytes() {
        let mut q = SendQueue::new(0, 100);
        assert!(q.has_room());
        q.push(bin(60));
        assert!(q.has_room());
        q.push(bin(60));
        assert!(!q.has_room());
        q.next_to_send();
        assert!(q.has_room());
    }

    #[test]
    fn paused_queue_reports_what_is_left_unsent() {
        let mut q = SendQueue::new(10, 1 << 20);
        q.push(bin(20));
        q.push(bin(30));
        q.push(Outbound::Text("{\"t\":\"done\"}".into()));
        drain(&mut q);
        // Closing now (paused at 20 > 10) leaves the rest unsent, and we can say how much.
        assert_eq!(q.unsent_bytes(), 30 + 12);
    }
}
