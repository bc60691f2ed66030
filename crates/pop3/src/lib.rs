//! causeway-pop3 (to be written).
