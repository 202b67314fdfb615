//! Django `signed_cookies` session cookies (in progress).
