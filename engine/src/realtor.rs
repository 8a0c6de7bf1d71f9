//! Realtors as the engine sees them: home, service radius, working hours and status.

use serde::{Deserialize, Serialize};

use crate::geo::Location;
use crate::ids::RealtorId;
use crate::time::WorkingHours;

/// The largest service radius a realtor may set, in km (CONTRACT 4).
pub const MAX_SERVICE_RADIUS_KM: f64 = 200.0;

/// Whether a realtor takes new tours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RealtorStatus {
    /// Matchable.
    Available,
    /// Not matchable; booked tours stay booked.
    Unavailable,
}

impl RealtorStatus {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RealtorStatus::Available => "available",
            RealtorStatus::Unavailable => "unavailable",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(RealtorStatus::Available),
            "unavailable" => Some(RealtorStatus::Unavailable),
            _ => None,
        }
    }
}

/// Why a realtor profile was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// Radius not in (0, 200] km.
    #[error("service radius {0} km is outside (0, {MAX_SERVICE_RADIUS_KM}]")]
    Radius(f64),
}

/// A realtor with a profile: only these can be matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Realtor {
    /// Who.
    pub id: RealtorId,
    /// Where they start from; the service radius is measured from here.
    pub home: Location,
    radius_km: f64,
    /// Weekly hours in their time zone.
    pub hours: WorkingHours,
    /// Whether they take new tours.
    pub status: RealtorStatus,
}

impl Realtor {
    /// A realtor profile.
    ///
    /// # Errors
    /// When the radius is not a number in (0, 200] km.
    pub fn new(
        id: RealtorId,
        home: Location,
        service_radius_km: f64,
        hours: WorkingHours,
        status: RealtorStatus,
    ) -> Result<Self, ProfileError> {
        if !(service_radius_km > 0.0 && service_radius_km <= MAX_SERVICE_RADIUS_KM) {
            return Err(ProfileError::Radius(service_radius_km));
        }
        Ok(Self {
            id,
            home,
            radius_km: service_radius_km,
            hours,
            status,
        })
    }

    /// How far from home the first listing may be, in km.
    #[must_use]
    pub fn service_radius_km(&self) -> f64 {
        self.radius_km
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::TimeZone;

    #[test]
    fn radius_bounds() {
        let home = Location::new(38.7, -9.1).unwrap();
        let hours = WorkingHours::new(TimeZone::utc(), vec![]);
        let make = |r| {
            Realtor::new(
                RealtorId::new_random(),
                home,
                r,
                hours.clone(),
                RealtorStatus::Available,
            )
        };
        assert!(make(0.0).is_err());
        assert!(make(-1.0).is_err());
        assert!(make(200.01).is_err());
        assert!(make(f64::NAN).is_err());
        assert!(make(200.0).is_ok());
        assert!(make(0.1).is_ok());
    }
}
