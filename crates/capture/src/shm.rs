//! A shared-memory segment the X server writes captured pixels into (MIT-SHM 1.2: the
//! server creates the segment and passes its file descriptor).

use memmap2::MmapMut;
use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

use crate::CaptureError;

pub struct Segment {
    pub id: shm::Seg,
    pub map: MmapMut,
    pub size: usize,
}

impl Segment {
    /// A segment of at least `size` bytes, or `None` when the server cannot share memory
    /// with us (no MIT-SHM 1.2, or a remote display): the caller falls back to `GetImage`.
    pub fn create(conn: &RustConnection, size: usize) -> Result<Option<Segment>, CaptureError> {
        let version = match conn.shm_query_version() {
            Ok(cookie) => cookie.reply().ok(),
            Err(_) => None,
        };
        if version.is_none_or(|v| (v.major_version, v.minor_version) < (1, 2)) {
            return Ok(None);
        }
        let id = conn
            .generate_id()
            .map_err(|e| CaptureError::Connection(e.to_string()))?;
        let len = u32::try_from(size)
            .map_err(|_| CaptureError::SharedMemory(format!("{size} bytes is too large")))?;
        let reply = match conn.shm_create_segment(id, len, false)?.reply() {
            Ok(reply) => reply,
            Err(_) => return Ok(None),
        };
        let fd = reply.shm_fd;
        // SAFETY: the X server created this segment for us alone and only writes into it
        // during our own ShmGetImage requests, which we wait for before reading; no other
        // mapping in this process aliases it.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().len(size).map_mut(&fd) }
            .map_err(|e| CaptureError::SharedMemory(e.to_string()))?;
        Ok(Some(Segment { id, map, size }))
    }

    pub fn detach(&self, conn: &RustConnection) {
        if conn.shm_detach(self.id).is_err() {
            // The connection is going away; the server frees the segment with it.
        }
    }
}
