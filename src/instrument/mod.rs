//! Instrumentation: parse → rewrite → encode.
