//! Authentication for the client access tier.
