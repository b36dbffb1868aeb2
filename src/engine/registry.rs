//! Names of the tasks an engine serves: typed lookup by name, and the list
//! `Engine::stop` closes. Entries are weak: a registered object that goes
//! away frees its name.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;

use crate::sync::rc::{Arc, Weak};
use crate::sync::Mutex;

use super::Closable;

/// Why a name could not be registered with an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// The engine already serves an open object of this name.
    NameTaken(String),
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameTaken(n) => write!(f, "a buffer named `{n}` is already registered"),
        }
    }
}

impl std::error::Error for RegisterError {}

struct Entry {
    /// A weak handle of the registrant's choosing, recovered by type.
    typed: Box<dyn Any + Send + Sync>,
    closer: Weak<dyn Closable>,
}

pub(crate) struct Registry {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Registers `name`. A name whose object has gone may be taken again.
    pub(crate) fn register(
        &self,
        name: &str,
        typed: Box<dyn Any + Send + Sync>,
        closer: Weak<dyn Closable>,
    ) -> Result<(), RegisterError> {
        let mut reg = self.entries.lock();
        if let Some(old) = reg.get(name) {
            if old.closer.strong_count() > 0 {
                return Err(RegisterError::NameTaken(name.to_string()));
            }
        }
        reg.insert(name.to_string(), Entry { typed, closer });
        Ok(())
    }

    /// Removes `name` if it still names the object at `at` (a later one may
    /// have taken the name).
    pub(crate) fn unregister(&self, name: &str, at: *const ()) {
        let mut reg = self.entries.lock();
        if reg
            .get(name)
            .is_some_and(|e| e.closer.as_ptr().cast::<()>() == at)
        {
            reg.remove(name);
        }
    }

    /// The typed handle registered as `name`, if it is of type `W`.
    pub(crate) fn find<W: Any + Clone>(&self, name: &str) -> Option<W> {
        let reg = self.entries.lock();
        reg.get(name)?.typed.downcast_ref::<W>().cloned()
    }

    /// The names whose objects are still open, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let reg = self.entries.lock();
        let mut names: Vec<String> = reg
            .iter()
            .filter(|(_, e)| e.closer.strong_count() > 0)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// Every open object, with its name.
    pub(crate) fn closers(&self) -> Vec<(String, Arc<dyn Closable>)> {
        let reg = self.entries.lock();
        reg.iter()
            .filter_map(|(n, e)| e.closer.upgrade().map(|c| (n.clone(), c)))
            .collect()
    }
}
