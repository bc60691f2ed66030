//! causeway-wire (to be written).
pub fn _warm() {}
