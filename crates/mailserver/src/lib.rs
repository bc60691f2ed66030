//! causeway-mailserver (to be written).
