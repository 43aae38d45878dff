//! Shared helpers of the two front ends.
