//! The schema's migrations, built into the binary (`migrations/sqlite`, `migrations/postgres`).
//!
//! This is what sqlx's `migrate!` macro does, without its proc macro, which compiled both
//! database drivers and SQLite's C code a second time for the compiler: minutes of every
//! clean build. Each migration is read exactly as sqlx reads a directory (version, then
//! the description with `_` as spaces, `-- no-transaction` first for no transaction), so
//! the checksums of databases migrated by earlier releases still match. A test checks
//! that the lists name every file of the directories.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

/// One migration file: its name and its SQL.
type File = (&'static str, &'static str);

macro_rules! files {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../migrations/", $dir, "/", $name)))),*]
    };
}

pub(crate) const SQLITE: &[File] = files!("sqlite":
    "0001_init.sql",
    "0002_invitations.sql",
    "0003_queue_auto_assign.sql",
    "0004_audit_chain.sql",
    "0005_recordings.sql",
);

pub(crate) const POSTGRES: &[File] = files!("postgres":
    "0001_init.sql",
    "0002_invitations.sql",
    "0003_queue_auto_assign.sql",
    "0004_audit_chain.sql",
    "0005_recordings.sql",
);

/// The migrator for one backend's files.
pub(crate) async fn migrator(files: &'static [File]) -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded(files)).await
}

#[derive(Debug)]
struct Embedded(&'static [File]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move { migrations(self.0) })
    }
}

fn migrations(files: &[File]) -> Result<Vec<Migration>, BoxDynError> {
    let mut out = Vec::with_capacity(files.len());
    for &(name, sql) in files {
        let (version, rest) = name
            .split_once('_')
            .ok_or_else(|| format!("migration {name:?} has no version prefix"))?;
        let version: i64 = version
            .parse()
            .map_err(|_| format!("migration {name:?}: the version is not a number"))?;
        let kind = MigrationType::from_filename(rest);
        let description = rest.trim_end_matches(kind.suffix()).replace('_', " ");
        out.push(Migration::new(
            version,
            Cow::Owned(description),
            kind,
            Cow::Borrowed(sql),
            sql.starts_with("-- no-transaction"),
        ));
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in the directory is in the list, and what the list holds is what sqlx
    /// itself reads from the directory (same versions, descriptions and checksums).
    #[tokio::test]
    async fn the_lists_hold_every_migration_file_as_sqlx_reads_it() {
        for (dir, files) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let from_dir = Migrator::new(path).await.expect("sqlx reads the directory");
            let built_in = migrator(files).await.expect("the built-in list");
            let key = |m: &Migration| {
                (
                    m.version,
                    m.description.to_string(),
                    m.checksum.to_vec(),
                    m.no_tx,
                    m.migration_type,
                )
            };
            assert_eq!(
                built_in.iter().map(key).collect::<Vec<_>>(),
                from_dir.iter().map(key).collect::<Vec<_>>(),
                "migrations/{dir}"
            );
        }
    }
}
