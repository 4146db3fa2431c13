//! Helpers on the output ratio enum generated from the spec.

use std::fmt;

use crate::{error::Error, Ratio};

/// Which way a frame is longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Orientation {
    /// Wider than tall.
    Landscape,
    /// Taller than wide.
    Portrait,
    /// As wide as tall.
    Square,
}

impl fmt::Display for Orientation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Orientation::Landscape => "landscape",
            Orientation::Portrait => "portrait",
            Orientation::Square => "square",
        })
    }
}

impl Ratio {
    /// Every ratio the API accepts, in the spec's order.
    pub const ALL: [Ratio; 8] = [
        Ratio::X1280720,
        Ratio::X7201280,
        Ratio::X1104832,
        Ratio::X8321104,
        Ratio::X960960,
        Ratio::X1584672,
        Ratio::X1280768,
        Ratio::X7681280,
    ];

    /// Parses `"1280:720"` or `"1280x720"` (spaces and case ignored).
    ///
    /// ```
    /// use cometapi_runway::Ratio;
    /// assert_eq!(Ratio::parse("1280x720").unwrap(), Ratio::X1280720);
    /// assert_eq!(Ratio::parse(" 720:1280 ").unwrap().to_string(), "720:1280");
    /// assert!(Ratio::parse("1:1").unwrap_err().to_string().contains("960:960"));
    /// ```
    pub fn parse(text: &str) -> Result<Ratio, Error> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        let (w, h) = compact
            .split_once([':', 'x'])
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .ok_or_else(|| Error::invalid("ratio", format!("{text:?}"), rule()))?;
        Ratio::ALL
            .into_iter()
            .find(|r| r.width() == w && r.height() == h)
            .ok_or_else(|| Error::invalid("ratio", format!("{text:?}"), rule()))
    }

    /// Width in pixels.
    pub fn width(self) -> u32 {
        self.dimensions().0
    }

    /// Height in pixels.
    pub fn height(self) -> u32 {
        self.dimensions().1
    }

    /// Width divided by height.
    pub fn aspect(self) -> f64 {
        f64::from(self.width()) / f64::from(self.height())
    }

    /// Landscape, portrait or square.
    pub fn orientation(self) -> Orientation {
        match self.width().cmp(&self.height()) {
            std::cmp::Ordering::Greater => Orientation::Landscape,
            std::cmp::Ordering::Less => Orientation::Portrait,
            std::cmp::Ordering::Equal => Orientation::Square,
        }
    }

    /// The ratio whose aspect is closest to an image of `width` × `height` pixels
    /// (compared on a log scale, so 2:1 and 1:2 are equally far from 1:1).
    /// `None` when either side is zero.
    ///
    /// ```
    /// use cometapi_runway::Ratio;
    /// assert_eq!(Ratio::closest_to(1920, 1080), Some(Ratio::X1280720));
    /// assert_eq!(Ratio::closest_to(1080, 1920), Some(Ratio::X7201280));
    /// assert_eq!(Ratio::closest_to(500, 500), Some(Ratio::X960960));
    /// assert_eq!(Ratio::closest_to(0, 500), None);
    /// ```
    pub fn closest_to(width: u32, height: u32) -> Option<Ratio> {
        if width == 0 || height == 0 {
            return None;
        }
        let target = (f64::from(width) / f64::from(height)).ln();
        Ratio::ALL.into_iter().min_by(|a, b| {
            let da = (a.aspect().ln() - target).abs();
            let db = (b.aspect().ln() - target).abs();
            da.total_cmp(&db)
        })
    }

    fn dimensions(self) -> (u32, u32) {
        match self {
            Ratio::X1280720 => (1280, 720),
            Ratio::X7201280 => (720, 1280),
            Ratio::X1104832 => (1104, 832),
            Ratio::X8321104 => (832, 1104),
            Ratio::X960960 => (960, 960),
            Ratio::X1584672 => (1584, 672),
            Ratio::X1280768 => (1280, 768),
            Ratio::X7681280 => (768, 1280),
        }
    }
}

fn rule() -> String {
    let all: Vec<String> = Ratio::ALL.iter().map(ToString::to_string).collect();
    format!("must be one of {}", all.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ratio_round_trips_through_both_spellings() {
        for r in Ratio::ALL {
            assert_eq!(Ratio::parse(&r.to_string()).unwrap(), r);
            assert_eq!(Ratio::parse(&format!("{}X{}", r.width(), r.height())).unwrap(), r);
            assert_eq!(r.to_string(), format!("{}:{}", r.width(), r.height()));
        }
    }

    #[test]
    fn orientation_follows_the_longer_side() {
        assert_eq!(Ratio::X1584672.orientation(), Orientation::Landscape);
        assert_eq!(Ratio::X8321104.orientation(), Orientation::Portrait);
        assert_eq!(Ratio::X960960.orientation(), Orientation::Square);
    }

    #[test]
    fn closest_ratio_picks_the_nearest_aspect() {
        assert_eq!(Ratio::closest_to(2400, 1000), Some(Ratio::X1584672));
        assert_eq!(Ratio::closest_to(1000, 1300), Some(Ratio::X8321104));
        assert_eq!(Ratio::closest_to(1280, 768), Some(Ratio::X1280768));
        assert_eq!(Ratio::closest_to(1, 1), Some(Ratio::X960960));
    }

    #[test]
    fn bad_ratios_name_the_field_value_and_rule() {
        for bad in ["", "16:9", "1280:", "wide", "1280:720:1"] {
            let msg = Ratio::parse(bad).unwrap_err().to_string();
            assert!(msg.starts_with("invalid ratio") && msg.contains("1280:720"), "{bad}: {msg}");
        }
    }
}
