//! Segment register loads and descriptor-table access (SDM Vol. 3A 5.4–5.8).
//! (Filled in by the system-instructions work.)
