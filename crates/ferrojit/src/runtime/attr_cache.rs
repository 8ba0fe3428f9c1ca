//! Polymorphic caches for the attribute and method loads that stay generic in compiled code:
//! sites CPython did not specialise (they saw several types while warming up) and the slow arm
//! of sites specialised for one type. Each such site owns one [`SiteCache`] of a few entries,
//! keyed by type and type version, filled after a generic lookup succeeded.
//!
//! An entry is only made when the generic lookup's result is certain to be found again the
//! same way while the type's version stays the same (CPython bumps a type's version on any
//! change to it or to its bases):
//! - [`Kind::InstanceValue`]: an instance attribute of a type with inline values
//!   (`Py_TPFLAGS_MANAGED_DICT`), `PyObject_GenericGetAttr` as `tp_getattro`, and nothing of that
//!   name on the type; read from the instance's values at the shared-keys index, as
//!   `LOAD_ATTR_INSTANCE_VALUE` does (at a `STORE_ATTR` site, with `PyObject_GenericSetAttr` as
//!   `tp_setattro` too: stored there, as `STORE_ATTR_INSTANCE_VALUE` does);
//! - [`Kind::DictHint`]: the same kind of attribute on an instance whose `__dict__` was
//!   materialised (or never fitted the shared keys): read from the dict's entry at a remembered
//!   position after checking that entry's key, as `LOAD_ATTR_WITH_HINT` does;
//! - [`Kind::Method`]: a Python function found on the type, no such key in the shared keys (the
//!   keys only grow, so an unchanged entry count proves it is still absent) and the instance's
//!   values not turned into a dict, or a type whose instances have no dict at all; as
//!   `LOAD_METHOD_WITH_VALUES` / `LOAD_METHOD_NO_DICT` do. With `method-cache-dicts`, also on
//!   an instance whose `__dict__` was materialised: one lookup of the name in that dict proves
//!   it does not shadow the method, where the generic path looks the name up on the type as
//!   well (CPython's `LOAD_METHOD_WITH_DICT` guards one dict's keys version, so it fails on
//!   every other instance and the interpreter gives up specialising such sites).
//!
//! Anything else, or a miss, takes the generic path (`PyObject_GetAttr`, `_PyObject_GetMethod`).

use crate::cpython::ffi::read;
use crate::cpython::layout;
use crate::hir::builder::{MethodCase, Unshadowed};
use crate::hir::KeysCheck;
use pyo3_ffi::*;
use std::cell::Cell;
use std::os::raw::{c_int, c_void};

/// A Method entry's `nentries` for a type whose instances have no dict.
const NO_DICT: isize = -1;
/// A Method entry's `nentries` for instances whose dict was materialised: the name is looked
/// up in the instance's own dict on each use.
const OWN_DICT: isize = -2;

/// Entries per site: richards' polymorphic sites see up to four task classes.
pub const ENTRIES: usize = 4;

/// What a cache entry knows how to do without a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Kind {
    #[default]
    Empty,
    /// `values[index]` of the instance.
    InstanceValue,
    /// The value of entry `index` of the instance's own dict, if its key is still the name.
    DictHint,
    /// The function `method`, bound to the instance.
    Method,
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    ty: usize,
    version: u32,
    kind: Kind,
    /// Shared-keys index (InstanceValue) or dict entry index (DictHint).
    index: u32,
    /// Shared-keys entry count when filled, [`NO_DICT`] for types without an instance dict, or
    /// [`OWN_DICT`] for instances with a materialised dict (Method).
    nentries: isize,
    /// Borrowed from the type's dict (Method); valid while the version holds.
    method: usize,
}

/// One site's cache. Only touched with the GIL held.
#[derive(Debug, Default)]
pub struct SiteCache {
    entries: [Cell<Entry>; ENTRIES],
    next: Cell<u8>,
    /// Loads the entries served.
    hits: Cell<u32>,
}

/// Hits after which a site's cache asks for its function's site feedback
/// (`hot-site-feedback`): a function entered too seldom to reach the entry count of
/// `hook::SITE_FEEDBACK_AFTER`, such as one that runs a long loop, gets its feedback too.
pub const FEEDBACK_AFTER_HITS: u32 = 1000;

/// What a generic `LOAD_ATTR` site's cache learnt while the code ran: one type, whose
/// attribute sat at one place. A recompilation uses it as the interpreter's own feedback for a
/// site the interpreter had not specialised when the function was first compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiteFeedback {
    /// `LOAD_ATTR_INSTANCE_VALUE` or `LOAD_ATTR_WITH_HINT`.
    pub specialised: u8,
    pub version: u32,
    pub index: u16,
}

impl SiteCache {
    /// The feedback of a cache that holds exactly one instance-value or dict-hint entry.
    pub fn feedback(&self) -> Option<SiteFeedback> {
        use crate::cpython::opcodes::{LOAD_ATTR_INSTANCE_VALUE, LOAD_ATTR_WITH_HINT};
        let mut filled = self
            .entries
            .iter()
            .map(Cell::get)
            .filter(|e| e.kind != Kind::Empty);
        let e = filled.next()?;
        if filled.next().is_some() {
            return None;
        }
        let specialised = match e.kind {
            Kind::InstanceValue => LOAD_ATTR_INSTANCE_VALUE,
            Kind::DictHint => LOAD_ATTR_WITH_HINT,
            _ => return None,
        };
        Some(SiteFeedback {
            specialised,
            version: e.version,
            index: u16::try_from(e.index).ok()?,
        })
    }

    /// The instance-value entries (type version, shared-keys index), in slot order: what a
    /// site that saw several types compiles to with `poly-attrs`.
    pub fn instance_value_cases(&self) -> Vec<(u32, u32)> {
        self.entries
            .iter()
            .map(Cell::get)
            .filter(|e| e.kind == Kind::InstanceValue)
            .map(|e| (e.version, e.index))
            .collect()
    }

    /// The method entries of types whose instances prove with a check of their own that they
    /// do not shadow the method (no dict, values in place and the shared keys' entry count
    /// unchanged, or a dict of their own without the name), in slot order: what a site that saw several types compiles to with
    /// `poly-methods`.
    pub fn method_cases(&self) -> Vec<MethodCase> {
        let case = |e: Entry| {
            let unshadowed = match e.nentries {
                NO_DICT => Unshadowed::NoDict,
                OWN_DICT => Unshadowed::OwnDict,
                n => Unshadowed::Values(KeysCheck::Entries(u32::try_from(n).ok()?)),
            };
            Some(MethodCase {
                version: e.version,
                method: e.method,
                unshadowed,
            })
        };
        self.entries
            .iter()
            .map(Cell::get)
            .filter(|e| e.kind == Kind::Method)
            .filter_map(case)
            .collect()
    }

    /// Counts a hit; every [`FEEDBACK_AFTER_HITS`] hits, asks for the site feedback of the
    /// function whose code owns this cache (read when that code next returns).
    fn count_hit(&self) {
        let hits = self.hits.get().wrapping_add(1);
        self.hits.set(hits);
        if hits % FEEDBACK_AFTER_HITS == 0 {
            // SAFETY: the helpers that serve hits run with the GIL held.
            let rt = unsafe { super::hook::runtime() };
            if rt.options.enabled(super::Optimisation::HotSiteFeedback) {
                rt.feedback_asked_by = self as *const SiteCache as usize;
            }
        }
    }

    fn find(&self, ty: usize, version: u32) -> Option<Entry> {
        self.entries
            .iter()
            .map(Cell::get)
            .find(|e| e.kind != Kind::Empty && e.ty == ty && e.version == version)
    }

    fn insert(&self, e: Entry) {
        let slot = self.next.get() as usize % ENTRIES;
        self.entries[slot].set(e);
        self.next.set(((slot + 1) % ENTRIES) as u8);
    }
}

extern "C" {
    fn _PyObject_GetMethod(
        obj: *mut PyObject,
        name: *mut PyObject,
        method: *mut *mut PyObject,
    ) -> c_int;
}

/// The type's version if it is valid (0 otherwise).
pub(crate) unsafe fn valid_version(ty: *mut PyTypeObject) -> u32 {
    // SAFETY: `ty` is a live type object.
    unsafe {
        let l = layout();
        let flags: u64 = read::<std::os::raw::c_ulong>(ty as _, l.type_flags) as u64;
        if flags & l.tpflags_valid_version_tag as u64 == 0 {
            return 0;
        }
        read(ty as _, l.type_version_tag)
    }
}

/// The instance's inline values array, or NULL (no inline values, or turned into a dict).
unsafe fn values_of(obj: *mut PyObject) -> *mut *mut PyObject {
    // SAFETY: only called for instances of managed-dict types, whose pre-header holds the pointer.
    unsafe {
        let values: *mut c_void = read(
            obj as _,
            crate::cpython::runtime_layout().object_values_pointer,
        );
        values as *mut *mut PyObject
    }
}

/// `ty` keeps instance attributes in inline values and looks attributes up generically.
unsafe fn has_inline_values(ty: *mut PyTypeObject) -> bool {
    // SAFETY: `ty` is a live type object.
    unsafe {
        let l = layout();
        let flags = read::<std::os::raw::c_ulong>(ty as _, l.type_flags) as u64;
        let getattro: usize = read(ty as _, l.type_getattro);
        flags & l.tpflags_managed_dict as u64 != 0
            && getattro == PyObject_GenericGetAttr as *const () as usize
    }
}

/// The shared keys of a heap type with inline values.
unsafe fn shared_keys(ty: *mut PyTypeObject) -> *mut c_void {
    // SAFETY: `ty` is a heap type (managed-dict types are).
    unsafe { read(ty as _, layout().heaptype_cached_keys) }
}

unsafe fn nentries(keys: *mut c_void) -> isize {
    // SAFETY: `keys` is a live dict-keys object.
    unsafe { read(keys as _, layout().dictkeys_nentries) }
}

/// Index of `name` (by identity: attribute names are interned) in shared keys, if present.
unsafe fn key_index(keys: *mut c_void, name: *mut PyObject) -> Option<u32> {
    // SAFETY: `keys` is a live split (str-keyed) keys object; entries up to dk_nentries exist.
    unsafe {
        let l = layout();
        let log2_index_bytes: u8 = read(keys as _, l.dictkeys_log2_index_bytes);
        let entries = keys as usize + l.dictkeys_indices as usize + (1usize << log2_index_bytes);
        (0..nentries(keys).max(0) as usize)
            .find(|&i| {
                let entry = (entries + i * l.dict_unicode_entry_size as usize) as *const c_void;
                read::<*mut PyObject>(entry, l.dict_unicode_entry_key) == name
            })
            .map(|i| i as u32)
    }
}

/// `LOAD_ATTR` through the site's cache. New reference, or NULL with an exception set.
///
/// # Safety
/// GIL held; `obj`, `name` live; `cache` is this site's cache.
pub unsafe extern "C" fn fj_getattr_cached(
    obj: *mut PyObject,
    name: *mut PyObject,
    cache: *const SiteCache,
) -> *mut PyObject {
    // SAFETY: as above; entries are only trusted while the type's version matches.
    unsafe {
        let cache = &*cache;
        let ty = Py_TYPE(obj);
        let version = valid_version(ty);
        if version != 0 {
            if let Some(e) = cache.find(ty as usize, version) {
                let v = match e.kind {
                    Kind::InstanceValue => {
                        let values = values_of(obj);
                        if values.is_null() {
                            std::ptr::null_mut()
                        } else {
                            *values.add(e.index as usize)
                        }
                    }
                    Kind::DictHint => dict_entry_value(obj, name, e.index),
                    _ => std::ptr::null_mut(),
                };
                if !v.is_null() {
                    cache.count_hit();
                    Py_INCREF(v);
                    return v;
                }
            }
        }
        let r = PyObject_GetAttr(obj, name);
        if !r.is_null() && version != 0 && has_inline_values(ty) && valid_version(ty) == version {
            fill_instance_value(cache, obj, ty, version, name, r);
        }
        r
    }
}

unsafe fn fill_instance_value(
    cache: &SiteCache,
    obj: *mut PyObject,
    ty: *mut PyTypeObject,
    version: u32,
    name: *mut PyObject,
    found: *mut PyObject,
) {
    // SAFETY: `ty` is a live managed-dict heap type and `obj` its instance.
    unsafe {
        if !crate::cpython::ffi::_PyType_Lookup(ty, name).is_null() {
            return;
        }
        let values = values_of(obj);
        if values.is_null() {
            fill_dict_hint(cache, obj, ty, version, name, found);
            return;
        }
        fill_values_entry(cache, ty, version, name, values, found);
    }
}

/// An instance-value entry for `ty` at `version` when `name` is a shared key of `ty` whose
/// slot in the instance's `values` holds `expected`.
unsafe fn fill_values_entry(
    cache: &SiteCache,
    ty: *mut PyTypeObject,
    version: u32,
    name: *mut PyObject,
    values: *mut *mut PyObject,
    expected: *mut PyObject,
) {
    // SAFETY: `ty` is a live managed-dict heap type and `values` its instance's values array,
    // which has a slot for every shared key.
    unsafe {
        if let Some(index) = key_index(shared_keys(ty), name) {
            if *values.add(index as usize) == expected {
                cache.insert(Entry {
                    ty: ty as usize,
                    version,
                    kind: Kind::InstanceValue,
                    index,
                    nentries: 0,
                    method: 0,
                });
            }
        }
    }
}

/// The instance's materialised `__dict__` (a managed-dict type's pre-header), or NULL.
unsafe fn managed_dict(obj: *mut PyObject) -> *mut PyObject {
    // SAFETY: only called for instances of managed-dict types, whose pre-header holds the pointer.
    unsafe {
        read(
            obj as _,
            crate::cpython::runtime_layout().object_managed_dict_pointer,
        )
    }
}

/// The value at entry `index` of the str-keyed dict keys `keys` if that entry's key is `name`
/// (NULL otherwise); `values` is the split dict's values array or NULL for a combined dict.
unsafe fn keys_entry_value(
    keys: *mut c_void,
    values: *mut *mut PyObject,
    name: *mut PyObject,
    index: u32,
) -> *mut PyObject {
    // SAFETY: `keys` is a live dict-keys object; entries below dk_nentries exist.
    unsafe {
        let l = layout();
        let kind: u8 = read(keys as _, l.dictkeys_kind);
        if kind == DICT_KEYS_GENERAL || index as isize >= nentries(keys) {
            return std::ptr::null_mut();
        }
        let log2_index_bytes: u8 = read(keys as _, l.dictkeys_log2_index_bytes);
        let entries = keys as usize + l.dictkeys_indices as usize + (1usize << log2_index_bytes);
        let entry =
            (entries + index as usize * l.dict_unicode_entry_size as usize) as *const c_void;
        if read::<*mut PyObject>(entry, l.dict_unicode_entry_key) != name {
            return std::ptr::null_mut();
        }
        if values.is_null() {
            read(entry, l.dict_unicode_entry_value)
        } else {
            *values.add(index as usize)
        }
    }
}

/// `LOAD_ATTR_WITH_HINT`'s read: entry `index` of the instance's dict if its key is `name`.
unsafe fn dict_entry_value(obj: *mut PyObject, name: *mut PyObject, index: u32) -> *mut PyObject {
    // SAFETY: `obj` is an instance of a managed-dict type (the entry's type matched).
    unsafe {
        if !values_of(obj).is_null() {
            return std::ptr::null_mut();
        }
        let dict = managed_dict(obj);
        if dict.is_null() || Py_TYPE(dict) != std::ptr::addr_of_mut!(PyDict_Type) {
            return std::ptr::null_mut();
        }
        let l = layout();
        let keys: *mut c_void = read(dict as _, l.dict_keys);
        let values: *mut *mut PyObject = read(dict as _, l.dict_values);
        keys_entry_value(keys, values, name, index)
    }
}

/// Remembers where `name` sits in the instance's own dict, when the generic lookup found it
/// there (nothing of that name on the type, so the dict decides while the version holds).
unsafe fn fill_dict_hint(
    cache: &SiteCache,
    obj: *mut PyObject,
    ty: *mut PyTypeObject,
    version: u32,
    name: *mut PyObject,
    found: *mut PyObject,
) {
    // SAFETY: `ty` is `obj`'s live managed-dict type and nothing of `name` is on it (checked by
    // the caller); the dict's keys are read below their entry count.
    unsafe {
        let dict = managed_dict(obj);
        if dict.is_null() || Py_TYPE(dict) != std::ptr::addr_of_mut!(PyDict_Type) {
            return;
        }
        let l = layout();
        let keys: *mut c_void = read(dict as _, l.dict_keys);
        let values: *mut *mut PyObject = read(dict as _, l.dict_values);
        let n = nentries(keys).clamp(0, u32::MAX as isize) as u32;
        if let Some(index) = (0..n).find(|&i| keys_entry_value(keys, values, name, i) == found) {
            cache.insert(Entry {
                ty: ty as usize,
                version,
                kind: Kind::DictHint,
                index,
                nentries: 0,
                method: 0,
            });
        }
    }
}

/// `dk_kind` of dict keys with arbitrary (not only str) keys: their entries are laid out
/// differently (Include/internal/pycore_dict.h, `DICT_KEYS_GENERAL`).
const DICT_KEYS_GENERAL: u8 = 0;

/// `LOAD_METHOD` through the site's cache: on success takes `obj` and writes (method, self) or
/// (NULL, attribute) to `out`; on error leaves `obj` to the caller. 0 or -1.
///
/// # Safety
/// GIL held; `obj` owned, `name` live; `out` two writable stack slots; `cache` this site's.
pub unsafe extern "C" fn fj_load_method_cached(
    obj: *mut PyObject,
    name: *mut PyObject,
    out: *mut *mut PyObject,
    cache: *const SiteCache,
) -> c_int {
    // SAFETY: as above.
    unsafe {
        let cache = &*cache;
        let ty = Py_TYPE(obj);
        let version = valid_version(ty);
        if version != 0 {
            if let Some(e) = cache.find(ty as usize, version) {
                if e.kind == Kind::Method && method_still_unshadowed(obj, ty, &e, name) {
                    super::hook::runtime().stats.method_cache_hits += 1;
                    cache.count_hit();
                    let m = e.method as *mut PyObject;
                    Py_INCREF(m);
                    *out = m;
                    *out.add(1) = obj;
                    return 0;
                }
            }
        }
        let mut meth: *mut PyObject = std::ptr::null_mut();
        let found = _PyObject_GetMethod(obj, name, &mut meth);
        if meth.is_null() {
            return -1;
        }
        if found != 0 {
            if version != 0 && valid_version(ty) == version {
                fill_method(cache, obj, ty, version, name, meth);
            }
            *out = meth;
            *out.add(1) = obj;
        } else {
            *out = std::ptr::null_mut();
            Py_DECREF(obj);
            *out.add(1) = meth;
        }
        0
    }
}

unsafe fn method_still_unshadowed(
    obj: *mut PyObject,
    ty: *mut PyTypeObject,
    e: &Entry,
    name: *mut PyObject,
) -> bool {
    // SAFETY: `ty` is `obj`'s type, whose version matches the entry's.
    unsafe {
        match e.nentries {
            NO_DICT => true,
            OWN_DICT => own_dict_lacks(obj, ty, e.version, name),
            n => !values_of(obj).is_null() && nentries(shared_keys(ty)) == n,
        }
    }
}

/// `STORE_ATTR` through the site's cache (`poly-stores`): `obj.name = value` (nothing taken),
/// 0 or -1. An instance-value entry for the object's type and version stores into its values
/// at the entry's shared-keys index, as `STORE_ATTR_INSTANCE_VALUE` does; anything else goes
/// through `PyObject_SetAttr`, and a store that landed in the values of such a type fills an
/// entry.
///
/// # Safety
/// GIL held; `obj`, `name` and `value` live; `cache` is this site's cache.
pub unsafe extern "C" fn fj_setattr_cached(
    obj: *mut PyObject,
    name: *mut PyObject,
    value: *mut PyObject,
    cache: *const SiteCache,
) -> c_int {
    // SAFETY: as above; an entry is only trusted while the type's version matches, and the
    // values array of a managed-dict instance has a slot for every shared key.
    unsafe {
        let cache = &*cache;
        let ty = Py_TYPE(obj);
        let version = valid_version(ty);
        if version != 0 {
            if let Some(e) = cache.find(ty as usize, version) {
                let values = values_of(obj);
                if e.kind == Kind::InstanceValue && !values.is_null() {
                    cache.count_hit();
                    let slot = values.add(e.index as usize);
                    let old = *slot;
                    Py_INCREF(value);
                    *slot = value;
                    match old.is_null() {
                        true => super::helpers::fj_values_add_key(values, i64::from(e.index)),
                        false => Py_DECREF(old),
                    }
                    return 0;
                }
            }
        }
        let r = PyObject_SetAttr(obj, name, value);
        if r == 0 && version != 0 && stores_generically(ty) && valid_version(ty) == version {
            fill_instance_store(cache, obj, ty, version, name, value);
        }
        r
    }
}

/// `ty` keeps instance attributes in inline values and stores and looks them up generically.
unsafe fn stores_generically(ty: *mut PyTypeObject) -> bool {
    // SAFETY: `ty` is a live type object.
    unsafe {
        has_inline_values(ty)
            && (*ty).tp_setattro.map(|f| f as usize)
                == Some(PyObject_GenericSetAttr as *const () as usize)
    }
}

/// Remembers that `obj.name = value` stored into the instance's values (nothing of that name
/// on the type, which the version proves for as long as it holds).
unsafe fn fill_instance_store(
    cache: &SiteCache,
    obj: *mut PyObject,
    ty: *mut PyTypeObject,
    version: u32,
    name: *mut PyObject,
    value: *mut PyObject,
) {
    // SAFETY: `ty` is a live managed-dict heap type and `obj` its instance.
    unsafe {
        if !crate::cpython::ffi::_PyType_Lookup(ty, name).is_null() {
            return;
        }
        let values = values_of(obj);
        if values.is_null() {
            return;
        }
        fill_values_entry(cache, ty, version, name, values, value);
    }
}

/// `STORE_ATTR_WITH_HINT`: `obj.name = value` (nothing taken), 0 or -1. The interpreter
/// specialised the site for a managed-dict type at `version` with no descriptor of that name
/// (CPython bumps the version on any change to the type), so while the type still has that
/// version, the generic path would end in `PyDict_SetItem` on the instance's dict when it has
/// one (`_PyObject_GenericSetAttrWithDict` -> `_PyObjectDict_SetItem`): go there directly.
/// The dict's own version, GC tracking and insertion order are `PyDict_SetItem`'s.
///
/// # Safety
/// GIL held; `obj`, `name` and `value` live; `version` non-zero.
pub unsafe extern "C" fn fj_store_attr_dict(
    obj: *mut PyObject,
    name: *mut PyObject,
    value: *mut PyObject,
    version: u64,
) -> c_int {
    // SAFETY: a type with that version is the managed-dict type the interpreter specialised
    // for (versions are never reused), whose instances have the values and dict pointers in
    // their pre-header; the dict pointer is NULL or a live dict.
    unsafe {
        let ty = Py_TYPE(obj);
        if u64::from(read::<u32>(ty as _, layout().type_version_tag)) == version
            && values_of(obj).is_null()
        {
            let dict = managed_dict(obj);
            if !dict.is_null() {
                return PyDict_SetItem(dict, name, value);
            }
        }
        PyObject_SetAttr(obj, name, value)
    }
}

/// [`own_dict_lacks`] for machine code (`own-dict-methods`): 1 or 0 in a full word. `obj`'s
/// type had `version` when the caller checked it.
///
/// # Safety
/// GIL held; `obj` and `name` live; `obj`'s type is a managed-dict type.
pub unsafe extern "C" fn fj_own_dict_lacks(
    obj: *mut PyObject,
    name: *mut PyObject,
    version: u32,
) -> u64 {
    // SAFETY: the caller's contract.
    unsafe { u64::from(own_dict_lacks(obj, Py_TYPE(obj), version, name)) }
}

/// An instance with a materialised dict (an [`OWN_DICT`] entry) has no attribute that shadows
/// the entry's method, and its type is still at the entry's `version` afterwards (a key with a
/// Python `__eq__` in the dict can run code during the lookup).
unsafe fn own_dict_lacks(
    obj: *mut PyObject,
    ty: *mut PyTypeObject,
    version: u32,
    name: *mut PyObject,
) -> bool {
    // SAFETY: `ty` is `obj`'s managed-dict type; the dict pointer is NULL or a live dict; the
    // name is the site's live str.
    unsafe {
        if !values_of(obj).is_null() {
            return false;
        }
        let dict = managed_dict(obj);
        if !dict.is_null() {
            let found = PyDict_GetItemWithError(dict, name);
            if !found.is_null() {
                return false;
            }
            if !PyErr_Occurred().is_null() {
                // The generic path looks again and raises the same way.
                PyErr_Clear();
                return false;
            }
        }
        valid_version(ty) == version
    }
}

unsafe fn fill_method(
    cache: &SiteCache,
    obj: *mut PyObject,
    ty: *mut PyTypeObject,
    version: u32,
    name: *mut PyObject,
    meth: *mut PyObject,
) {
    // SAFETY: `ty` is `obj`'s live type; `meth` is what the generic lookup found on it.
    unsafe {
        if Py_TYPE(meth) != std::ptr::addr_of_mut!(PyFunction_Type)
            || crate::cpython::ffi::_PyType_Lookup(ty, name) != meth
        {
            return;
        }
        let l = layout();
        let dictoffset: isize = read(ty as _, l.type_dictoffset);
        let nentries = if has_inline_values(ty) {
            let keys = shared_keys(ty);
            if values_of(obj).is_null() {
                if !super::hook::runtime()
                    .options
                    .enabled(super::Optimisation::MethodCacheDicts)
                {
                    return;
                }
                OWN_DICT
            } else if key_index(keys, name).is_some() {
                return;
            } else {
                nentries(keys)
            }
        } else if dictoffset == 0
            && read::<usize>(ty as _, l.type_getattro)
                == PyObject_GenericGetAttr as *const () as usize
        {
            NO_DICT
        } else {
            return;
        };
        cache.insert(Entry {
            ty: ty as usize,
            version,
            kind: Kind::Method,
            index: 0,
            nentries,
            method: meth as usize,
        });
    }
}
