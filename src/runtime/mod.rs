//! The runtime (issue 4): store, lease lock, decider queue, outbox. Not built yet.
