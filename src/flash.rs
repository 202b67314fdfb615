//! One-time messages carried to the next request: Django's messages,
//! Rails' flash.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ValueError;
use crate::payload::Priority;
use crate::{Error, Session};

impl Session {
    /// How many messages a list under one key keeps: a push beyond it
    /// drops the oldest, as Django's cookie storage drops the oldest
    /// messages that do not fit. Messages a handler pushes and no page
    /// takes (an API client's, say) then stop growing at this count. It
    /// is a count, not a size: the list is an entry at
    /// [`Priority::Normal`], so long messages left unread can still make
    /// the budget drop [`Priority::Low`] entries before it (keep messages
    /// short, or lower the list's priority with [`Session::set_priority`]).
    pub const MAX_FLASHES: usize = 16;

    /// Appends `message` to the list of one-time messages under `key`
    /// ("saved", "invalid password"), for a later request to read once with
    /// [`Session::take_flashes`]: Django's `messages.add_message`, Rails'
    /// `flash`. Each push adds one message, so a redirect after two
    /// actions shows both; a message with a level is a type of the
    /// application's, `(Level, String)` say.
    ///
    /// The list is one entry, a CBOR array of at most
    /// [`Session::MAX_FLASHES`] messages (a push beyond drops the oldest),
    /// at [`Priority::Normal`] when the push creates it and at the priority
    /// it has otherwise (raise it with [`Session::set_priority`] for
    /// messages that must outlast other entries). The budget drops it as
    /// any entry, reported. [`Session::get`] as a `Vec` reads the messages
    /// without taking them.
    ///
    /// ```
    /// use sealed_session::{KeyRing, MasterKey, Sealer};
    /// let sealer = Sealer::builder(KeyRing::new(MasterKey::generate()?)).build()?;
    /// let mut session = sealer.new_session()?;
    /// session.push_flash("messages", "Profile saved")?;
    /// session.push_flash("messages", "Email confirmed")?;
    /// let cookie = sealer.seal(&mut session)?;
    ///
    /// // The next request shows them, once.
    /// let mut next = sealer.open(&cookie)?;
    /// let shown: Vec<String> = next.take_flashes("messages")?;
    /// assert_eq!(shown, ["Profile saved", "Email confirmed"]);
    /// assert!(next.take_flashes::<String>("messages")?.is_empty());
    /// # Ok::<(), sealed_session::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Session::insert_with_priority`] (a reserved or empty key, the
    /// entry or depth limit, a message that does not serialize); and as
    /// [`Session::get`] for what is stored under `key` already: a value
    /// that is not a list, or an entry in the overflow store not loaded
    /// (`LazySession::push_flash` loads it).
    pub fn push_flash<T: Serialize>(&mut self, key: &str, message: T) -> Result<(), Error> {
        let message = ciborium::Value::serialized(&message)
            .map_err(|_| Error::Value(ValueError::Serialize))?;
        let priority = self.priority(key).unwrap_or(Priority::Normal);
        let mut messages = self.get::<Vec<ciborium::Value>>(key)?.unwrap_or_default();
        let excess = (messages.len() + 1).saturating_sub(Self::MAX_FLASHES);
        messages.drain(..excess);
        messages.push(message);
        self.insert_with_priority(key, &messages, priority)
    }

    /// Removes and returns the messages [`Session::push_flash`] stored
    /// under `key`, oldest first; none if there are none. A message that
    /// does not decode as `T` (its type changed in a deploy, or another
    /// handler pushed another type) is left out, and the key and `T` are
    /// logged (`entry-undecodable`, never the value); the others are
    /// returned. A value under `key` that is not a list is removed and
    /// logged so too, and reads as no messages, as [`Session::take`] does.
    ///
    /// # Errors
    ///
    /// As [`Session::take`]: an entry in the overflow store not loaded
    /// (`LazySession::take_flashes` loads it).
    pub fn take_flashes<T: DeserializeOwned>(&mut self, key: &str) -> Result<Vec<T>, Error> {
        let Some(list) = self.take::<Vec<ciborium::Value>>(key)? else {
            return Ok(Vec::new());
        };
        let count = list.len();
        let messages: Vec<T> = list
            .into_iter()
            .filter_map(|message| message.deserialized().ok())
            .collect();
        if messages.len() < count {
            crate::session::warn_undecodable::<T>(key, true);
        }
        Ok(messages)
    }
}
