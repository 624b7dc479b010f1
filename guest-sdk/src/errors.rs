//! The capabilities' error types, with `Display` as the sentence a person reads
//! in the plugin's status: the capability, the cause and, where there is one,
//! the fix. `?` turns any of them into a `report` error (`String`) or a
//! control's [`ControlError::Failed`](crate::ControlError::Failed).
//!
//! `Debug` stays the bindings' shape (`DockerError::Denied("why")`) for tests
//! and logs that match on the variant.

use std::fmt;

use crate::bindings::scope::plugin::{docker, http_traffic, procfs, traffic};
use crate::ControlError;

/// Declares a capability error mirroring its WIT variant, the conversion from
/// the bindings' type, `Debug` in the bindings' shape, `Error`, and `?` into
/// `String` and `ControlError`.
macro_rules! capability_error {
    ($(#[$doc:meta])* $name:ident from $wit:path { $($(#[$vdoc:meta])* $variant:ident $(($payload:ty))?,)* }) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq)]
        pub enum $name {
            $($(#[$vdoc])* $variant $(($payload))?,)*
        }

        impl From<$wit> for $name {
            fn from(err: $wit) -> Self {
                type W = $wit;
                capability_error!(@convert err, value, W, $name, $($variant $(($payload))?,)*)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                capability_error!(@debug self, f, value, $name, $($variant $(($payload))?,)*)
            }
        }

        impl std::error::Error for $name {}

        impl From<$name> for String {
            fn from(err: $name) -> String {
                err.to_string()
            }
        }

        impl From<$name> for ControlError {
            fn from(err: $name) -> ControlError {
                ControlError::Failed(err.to_string())
            }
        }
    };
    (@convert $err:ident, $v:ident, $w:ident, $name:ident, $($variant:ident $(($payload:ty))?,)*) => {
        match $err {
            $(capability_error!(@pat $v, $w, $variant $(($payload))?) => capability_error!(@pat $v, $name, $variant $(($payload))?),)*
        }
    };
    (@pat $v:ident, $w:ident, $variant:ident ($payload:ty)) => { $w::$variant($v) };
    (@pat $v:ident, $w:ident, $variant:ident) => { $w::$variant };
    (@debug $self:ident, $f:ident, $v:ident, $name:ident, $($variant:ident $(($payload:ty))?,)*) => {
        match $self {
            $(capability_error!(@pat $v, $name, $variant $(($payload))?) => capability_error!(@show $f, $v, $name, $variant $(($payload))?),)*
        }
    };
    (@show $f:ident, $v:ident, $name:ident, $variant:ident ($payload:ty)) => {
        $f.debug_tuple(concat!(stringify!($name), "::", stringify!($variant))).field($v).finish()
    };
    (@show $f:ident, $v:ident, $name:ident, $variant:ident) => {
        $f.write_str(concat!(stringify!($name), "::", stringify!($variant)))
    };
}

capability_error! {
    /// Why a `docker` call failed.
    DockerError from docker::DockerError {
        /// No engine answers on the host's Docker socket.
        Unavailable(String),
        /// The engine did not answer within the call's remaining budget.
        Timeout,
        /// No such container or image (or not visible to this plugin).
        NotFound(String),
        /// Not granted, or a path outside the read-only allow-list.
        Denied(String),
        /// The engine answered with an error, or with something unreadable.
        Failed(String),
    }
}

capability_error! {
    /// Why a `procfs` call failed.
    ProcfsError from procfs::ProcfsError {
        /// No such file, or no such process (any more).
        NotFound(String),
        /// Outside what this plugin may read; the message says why.
        Denied(String),
        /// The file is larger than the host's cap (the cap in bytes).
        TooLarge(u64),
        /// Reading failed, or took longer than the call's remaining budget.
        Io(String),
    }
}

capability_error! {
    /// Why a `traffic` call failed.
    TrafficError from traffic::TrafficError {
        /// Not granted, or the container is outside this plugin's scope.
        Denied(String),
        /// No such container, or it is not running.
        NotFound(String),
        /// The kernel lacks what this needs, e.g. the `netem` qdisc.
        Unsupported(String),
        /// Applying or reading the settings failed; the message says why.
        Failed(String),
        /// No answer within the call's remaining budget.
        Timeout,
    }
}

capability_error! {
    /// Why an `http-traffic` call failed.
    HttpTrafficError from http_traffic::HttpTrafficError {
        /// Not granted to this plugin.
        Denied(String),
        /// eBPF cannot be used on this host; the message says why.
        Unavailable(String),
        /// No answer within the call's remaining budget.
        Timeout,
    }
}

/// A refusal's reason, and the fix when the capability is not granted at all.
/// The host's not-granted text names the plugin, which the status line already
/// starts with: that prefix is left out.
fn denial(f: &mut fmt::Formatter<'_>, what: &str, capability: &str, why: &str) -> fmt::Result {
    let not_granted = format!("{capability} is not granted");
    let why = match why.split_once(": ") {
        Some((head, rest)) if head.starts_with("plugin ") && rest.starts_with(&not_granted) => rest,
        _ => why,
    };
    if why.starts_with(&not_granted) {
        write!(f, "{what} denied: {capability} is not granted to this plugin (add \"{capability}\" to its grants in the config)")
    } else {
        write!(f, "{what} denied: {why}")
    }
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerError::Unavailable(why) => write!(f, "Docker Engine unavailable: {why}"),
            DockerError::Timeout => f.write_str("Docker Engine did not answer within the call's time budget"),
            DockerError::NotFound(what) => write!(f, "Docker object not found: {what}"),
            DockerError::Denied(why) => denial(f, "Docker", "docker", why),
            DockerError::Failed(why) => write!(f, "Docker Engine error: {why}"),
        }
    }
}

impl fmt::Display for ProcfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcfsError::NotFound(what) => write!(f, "procfs: {what} does not exist (no such file, or the process has exited)"),
            ProcfsError::Denied(why) => denial(f, "procfs", "procfs", why),
            ProcfsError::TooLarge(cap) => write!(f, "procfs: the file is larger than the host's limit of {cap} bytes"),
            ProcfsError::Io(why) => write!(f, "procfs read failed: {why}"),
        }
    }
}

impl fmt::Display for TrafficError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrafficError::Denied(why) => denial(f, "traffic shaping", "traffic", why),
            TrafficError::NotFound(what) => write!(f, "traffic shaping: container not found: {what}"),
            TrafficError::Unsupported(why) => write!(f, "traffic shaping is not supported on this host: {why}"),
            TrafficError::Failed(why) => write!(f, "traffic shaping failed: {why}"),
            TrafficError::Timeout => f.write_str("traffic shaping did not finish within the call's time budget"),
        }
    }
}

impl fmt::Display for HttpTrafficError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpTrafficError::Denied(why) => denial(f, "HTTP traffic counters", "http-traffic", why),
            HttpTrafficError::Unavailable(why) => write!(f, "HTTP traffic counters unavailable on this host: {why}"),
            HttpTrafficError::Timeout => f.write_str("HTTP traffic counters did not answer within the call's time budget"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_sentences_with_cause_and_fix() {
        let missing = DockerError::Unavailable("/tmp/x/docker.sock does not exist".into());
        assert_eq!(missing.to_string(), "Docker Engine unavailable: /tmp/x/docker.sock does not exist");
        assert_eq!(String::from(missing.clone()), missing.to_string());
        assert_eq!(format!("{missing:?}"), r#"DockerError::Unavailable("/tmp/x/docker.sock does not exist")"#);
        let ungranted = DockerError::Denied("plugin volume-count: docker is not granted".into());
        assert_eq!(
            ungranted.to_string(),
            r#"Docker denied: docker is not granted to this plugin (add "docker" to its grants in the config)"#
        );
        let environ = ProcfsError::Denied("/proc/1/environ is not readable by plugins: secrets".into());
        assert_eq!(environ.to_string(), "procfs denied: /proc/1/environ is not readable by plugins: secrets");
        assert_eq!(ProcfsError::Io("EIO".into()).to_string(), "procfs read failed: EIO");
        assert_eq!(format!("{:?}", TrafficError::Timeout), "TrafficError::Timeout");
        let control: ControlError = HttpTrafficError::Unavailable("no tracefs".into()).into();
        assert!(matches!(control, ControlError::Failed(why) if why == "HTTP traffic counters unavailable on this host: no tracefs"));
    }
}
