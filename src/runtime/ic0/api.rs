//! Semantics of each ic0 function (engine-independent).
