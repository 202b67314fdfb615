//! Resource limits checked before the costly work they guard.

/// Bounds on what opening a token may cost. Every cookie is attacker
/// controlled, so each limit is checked before the work it bounds: the token
/// length before base64 decoding, the output size during decompression, the
/// entry count while indexing the payload, the nesting depth while decoding
/// a value.
///
/// ```
/// use sealed_session::Limits;
/// let limits = Limits::default().with_max_entries(64);
/// assert_eq!(limits.max_entries(), 64);
/// assert_eq!(limits.max_token_len(), 4096);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_token_len: usize,
    max_decompressed: usize,
    max_depth: usize,
    max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_len: 4096,
            max_decompressed: 64 * 1024,
            max_depth: 32,
            max_entries: 256,
        }
    }
}

impl Limits {
    /// Longest token accepted, in bytes (default 4096, the cookie size
    /// browsers keep). A valid token is ASCII, so bytes are characters;
    /// the length is checked before anything else, on the raw bytes.
    #[must_use]
    pub fn with_max_token_len(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Largest payload after decompression, in bytes (default 64 KiB).
    #[must_use]
    pub fn with_max_decompressed(mut self, bytes: usize) -> Self {
        self.max_decompressed = bytes;
        self
    }

    /// Deepest CBOR nesting accepted in a value (default 32).
    #[must_use]
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Most entries a session may hold (default 256).
    #[must_use]
    pub fn with_max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// The token length limit.
    pub fn max_token_len(&self) -> usize {
        self.max_token_len
    }

    /// The decompression cap.
    pub fn max_decompressed(&self) -> usize {
        self.max_decompressed
    }

    /// The nesting depth limit.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// The entry count limit.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }
}
