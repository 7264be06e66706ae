//! Periodic compaction of store history.
