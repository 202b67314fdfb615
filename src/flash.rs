//! One-time messages carried to the next request: Django's messages,
//! Rails' flash.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ValueError;
use crate::payload::Priority;
use crate::{Error, Session};

impl Session {
    /// Appends `message` to the list of one-time messages under `key`
    /// ("saved", "invalid password"), for a later request to read once with
    /// [`Session::take_flashes`]: Django's `messages.add_message`, Rails'
    /// `flash`. Each push adds one message, so a redirect after two
    /// actions shows both; a message with a level is a type of the
    /// application's, `(Level, String)` say.
    ///
    /// The list is one entry, a CBOR array, at [`Priority::High`] when the
    /// push creates it (at the priority it has otherwise): the budget
    /// drops it only after every normal and low entry, and reports the
    /// drop as for any entry. [`Session::get`] as a `Vec` reads the
    /// messages without taking them.
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
    pub fn push_flash<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        message: &T,
    ) -> Result<(), Error> {
        let message = ciborium::Value::serialized(message)
            .map_err(|_| Error::Value(ValueError::Serialize))?;
        let priority = self.priority(key).unwrap_or(Priority::High);
        let mut messages = self.get::<Vec<ciborium::Value>>(key)?.unwrap_or_default();
        messages.push(message);
        self.insert_with_priority(key, &messages, priority)
    }

    /// Removes and returns the messages [`Session::push_flash`] stored
    /// under `key`, oldest first; none if there are none. A list whose
    /// messages do not decode as `T` (their type changed in a deploy) is
    /// removed all the same, logged, and reads as empty, as
    /// [`Session::take`] does.
    ///
    /// # Errors
    ///
    /// As [`Session::take`]: an entry in the overflow store not loaded
    /// (`LazySession::take_flashes` loads it).
    pub fn take_flashes<T: DeserializeOwned>(&mut self, key: &str) -> Result<Vec<T>, Error> {
        Ok(self.take::<Vec<T>>(key)?.unwrap_or_default())
    }
}
