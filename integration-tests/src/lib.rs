//! End-to-end tests of faasconf's binaries (`faasconf`, `faasconf-actuator`,
//! `faasconf-policy`), run as real processes on loopback ports chosen at run time. The tests
//! live in `tests/`; `tests/common` builds the binaries once and starts them.
