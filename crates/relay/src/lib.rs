//! causeway-relay (to be written).
