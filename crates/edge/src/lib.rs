//! causeway-edge (to be written).
