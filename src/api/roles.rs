//! The roles a token may carry and the role each `BatchScaler` method needs.

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `WatchBatches`, `GetTarget`, `ListTargets`, `RouteJob`, `GetStats`, `GetJobStats`; the
    /// dashboard.
    Read,
    /// Everything `read` may, plus `Publish`, `Scale`, `ScaleAndWait`, `ScaleJob`, `ScaleJobs`.
    Produce,
    /// `Forward`, the replicas' own RPC, and `GetJobStats` (a replica asks an HRA's owner).
    Peer,
}

impl Role {
    /// Its name in a token file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Produce => "produce",
            Self::Peer => "peer",
        }
    }

    pub(super) fn bit(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Produce => 2,
            Self::Peer => 4,
        }
    }

    /// The role a `BatchScaler` method needs (by its path); `None` for other services
    /// (health and reflection are open).
    pub fn for_path(path: &str) -> Option<Self> {
        let method = path.strip_prefix("/batchscaler.v1.BatchScaler/")?;
        Some(match method {
            "Forward" => Self::Peer,
            "Publish" | "Scale" | "ScaleAndWait" | "ScaleJob" | "ScaleJobs" => Self::Produce,
            _ => Self::Read,
        })
    }

    /// A second role that may call the method at `path`: `peer` for `GetJobStats`, which a
    /// replica asks of the HRA's owner with its peer token.
    pub fn also_for_path(path: &str) -> Option<Self> {
        (path == "/batchscaler.v1.BatchScaler/GetJobStats").then_some(Self::Peer)
    }
}

/// A set of roles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    /// All three: a bare token, or no token file at all.
    pub const ALL: Self = Self(7);

    /// Whether these roles may do what `needed` allows (`produce` includes `read`).
    pub fn may(self, needed: Role) -> bool {
        let mut have = self.0;
        if have & Role::Produce.bit() != 0 {
            have |= Role::Read.bit();
        }
        have & needed.bit() != 0
    }

    /// These and `role`.
    pub fn with(self, role: Role) -> Self {
        Self(self.0 | role.bit())
    }

    /// The set as bits (read 1, produce 2, peer 4).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The set of these bits.
    pub fn from_bits(bits: u8) -> Self {
        Self(bits & Self::ALL.0)
    }

    /// Whether `role` is among them.
    pub fn has(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }
}
