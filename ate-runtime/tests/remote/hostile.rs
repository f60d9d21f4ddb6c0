//! Hostile clients (R7): what they send ends their own connection, appends nothing, and
//! other clients carry on.
