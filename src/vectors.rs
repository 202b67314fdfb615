//! Published test vectors (in progress).
