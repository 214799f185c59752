//! The store contract suite.
