//! causeway-client (to be written).
