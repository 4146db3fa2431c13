//! A faithful local simulator of CometAPI's Runway routes (feature `mock`).
