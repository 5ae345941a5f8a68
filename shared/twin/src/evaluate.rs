//! What-if evaluation of configurations.
