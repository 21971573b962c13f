//! A throwaway PostgreSQL cluster for tests, benchmarks and the crash test: `initdb` and
//! `pg_ctl` from the installed server binaries, in a private temporary directory, listening only
//! on a Unix socket in that directory (no TCP port to collide on), durability left on (`fsync`,
//! `synchronous_commit`, `full_page_writes`). As root, PostgreSQL's binaries run as the
//! `postgres` user through `runuser -u postgres --` (PostgreSQL refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No `initdb` / `pg_ctl` on `PATH` nor under `/usr/lib/postgresql/*/bin`.
    #[error(
        "PostgreSQL server binaries not found (initdb, pg_ctl); install the `postgresql` package"
    )]
    NoBinaries,
    /// A command could not be run, or failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command.
        command: String,
        /// Its output or the error.
        detail: String,
    },
}

/// A running throwaway cluster. Dropping it stops the server (immediate mode) and removes its
/// directory.
#[derive(Debug)]
pub struct Cluster {
    root: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    running: bool,
}

/// The socket's port number (it only names the socket file in the private directory).
const PORT: u16 = 5432;

static CLUSTERS: AtomicU64 = AtomicU64::new(0);

impl Cluster {
    /// Where the server binaries are, if installed.
    pub fn binaries() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                    return Some(dir);
                }
            }
        }
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
            .collect();
        versions.sort();
        versions.pop()
    }

    /// Creates a cluster in a new temporary directory and starts it.
    pub fn start() -> Result<Cluster, ClusterError> {
        let bin = Cluster::binaries().ok_or(ClusterError::NoBinaries)?;
        let as_postgres = is_root();
        let root = std::env::temp_dir().join(format!(
            "wfstate-pg-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|error| ClusterError::Command {
            command: format!("mkdir {}", root.display()),
            detail: error.to_string(),
        })?;
        let mut cluster = Cluster {
            root,
            bin,
            as_postgres,
            running: false,
        };
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&cluster.root))?;
        }
        let data = cluster.data_dir();
        let mut initdb = cluster.command("initdb");
        run(initdb.arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        cluster.start_again()?;
        Ok(cluster)
    }

    /// The connection string of the `postgres` database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The connection string of database `dbname`.
    pub fn url_for(&self, dbname: &str) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname={dbname}",
            self.root.display()
        )
    }

    /// The socket directory and port, for `psql -h DIR -p PORT` and `pgbench`.
    pub fn socket(&self) -> (&Path, u16) {
        (&self.root, PORT)
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Is the server running (as far as this handle knows)?
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Starts the stopped server on the same data directory (after a crash: WAL recovery).
    pub fn start_again(&mut self) -> Result<(), ClusterError> {
        let options = format!(
            "-k {} -p {PORT} -c listen_addresses= -c fsync=on -c synchronous_commit=on \
             -c full_page_writes=on -c max_connections=200",
            self.root.display()
        );
        let log = self.root.join("server.log");
        let data = self.data_dir();
        let mut pg_ctl = self.command("pg_ctl");
        run(pg_ctl
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"]))?;
        self.running = true;
        Ok(())
    }

    /// Stops the server: `mode` is `fast` (clean) or `immediate` (a crash: no checkpoint, the
    /// next start recovers from the WAL).
    pub fn stop(&mut self, mode: &str) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let mut pg_ctl = self.command("pg_ctl");
        let result = run(pg_ctl
            .arg("-D")
            .arg(&data)
            .args(["-w", "-t", "60", "-m", mode, "stop"]));
        self.running = false;
        result.map(|_| ())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// A client program (`psql`, `pgbench`), from the server's binaries or else from `PATH`;
    /// clients may run as root.
    pub fn command_in_path(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if path.is_file() {
            Command::new(path)
        } else {
            Command::new(program)
        }
    }

    /// A command of the server's binaries (through `runuser` as root).
    pub fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop("immediate");
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

fn run(command: &mut Command) -> Result<Output, ClusterError> {
    let name = format!("{command:?}");
    let output = command.output().map_err(|error| ClusterError::Command {
        command: name.clone(),
        detail: error.to_string(),
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ClusterError::Command {
            command: name,
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}
