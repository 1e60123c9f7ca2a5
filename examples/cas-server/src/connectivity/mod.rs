//! Connectivity tests: test-popconnectivity, test-imapconnectivity, test-outlookconnectivity (issue 9).
