//! Sans-IO POP3.
