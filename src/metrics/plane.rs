//! One image channel as a row-major buffer: the unit every metric works on.

/// A `height × width` single-channel image, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane<T> {
    pub height: usize,
    pub width: usize,
    pub data: Vec<T>,
}

impl<T: Copy> Plane<T> {
    /// Panics when `data` does not hold `height · width` values (a caller bug).
    pub fn new(height: usize, width: usize, data: Vec<T>) -> Self {
        assert_eq!(
            data.len(),
            height * width,
            "plane buffer does not match {height}x{width}"
        );
        Plane {
            height,
            width,
            data,
        }
    }

    pub fn from_fn(height: usize, width: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (y, x)))
            .map(|(y, x)| f(y, x))
            .collect();
        Plane {
            height,
            width,
            data,
        }
    }

    pub fn at(&self, y: usize, x: usize) -> T {
        self.data[y * self.width + x]
    }

    pub fn row(&self, y: usize) -> &[T] {
        &self.data[y * self.width..(y + 1) * self.width]
    }

    /// The `height × width` window whose top-left pixel is `(top, left)`.
    pub fn crop(&self, top: usize, left: usize, height: usize, width: usize) -> Self {
        assert!(
            top + height <= self.height && left + width <= self.width,
            "crop outside the plane"
        );
        Plane::from_fn(height, width, |y, x| self.at(top + y, left + x))
    }

    pub fn map<U>(&self, f: impl FnMut(T) -> U) -> Plane<U> {
        Plane {
            height: self.height,
            width: self.width,
            data: self.data.iter().copied().map(f).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_takes_the_window_at_its_offset() {
        let p = Plane::from_fn(4, 5, |y, x| 10 * y + x);
        let c = p.crop(1, 2, 2, 3);
        assert_eq!(c.data, vec![12, 13, 14, 22, 23, 24]);
        assert_eq!(c.row(1), &[22, 23, 24]);
    }
}
