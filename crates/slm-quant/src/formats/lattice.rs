//! The lattice search tables of llama.cpp's i-quant quantizers (`iq2xs_init_impl`,
//! `iq3xs_init_impl`): the map from a group's levels to its grid entry and, for level
//! combinations off the grid, the grid entries in the `nwant` nearest distance shells
//! (sorted by distance, then index), plus `iq2_find_best_neighbour`/`iq3_find_best_neighbour`.
//! Lattice points are `2 * level + 1`.

/// Search tables of one grid of `width`-element entries whose levels are `shift`-bit digits.
pub(crate) struct Lattice {
    width: usize,
    shift: usize,
    /// Level of each element of each grid entry (first `width` used).
    pub levels: Vec<[u8; 8]>,
    /// Grid index of a key, or -1.
    map: Vec<i32>,
    /// For keys off the grid: `neighbours[start[key]..start[key + 1]]`.
    start: Vec<u32>,
    neighbours: Vec<u16>,
}

impl Lattice {
    /// Builds the tables for a grid in ggml's form (element k in byte k of each entry), the
    /// byte value of each level, the key space size and the number of distance shells kept.
    pub(crate) fn build<T: Copy + Into<u64>>(
        grid: &[T],
        width: usize,
        shift: usize,
        level_values: &[u8],
        kmap_size: usize,
        nwant: usize,
    ) -> Lattice {
        let levels: Vec<[u8; 8]> = grid
            .iter()
            .map(|&g| {
                let g: u64 = g.into();
                let mut l = [0u8; 8];
                for (k, lk) in l.iter_mut().enumerate().take(width) {
                    let b = ((g >> (8 * k)) & 0xFF) as u8;
                    *lk = level_values.iter().position(|&v| v == b).unwrap_or(0) as u8;
                }
                l
            })
            .collect();
        let mut map = vec![-1i32; kmap_size];
        for (i, l) in levels.iter().enumerate() {
            let key: usize = (0..width).map(|k| usize::from(l[k]) << (shift * k)).sum();
            if let Some(m) = map.get_mut(key) {
                *m = i as i32;
            }
        }
        let mask = (1usize << shift) - 1;
        let mut start = Vec::with_capacity(kmap_size + 1);
        let mut neighbours = Vec::new();
        let mut dist: Vec<(i32, u16)> = Vec::with_capacity(levels.len());
        for (key, &m) in map.iter().enumerate() {
            start.push(neighbours.len() as u32);
            if m >= 0 {
                continue;
            }
            dist.clear();
            for (j, l) in levels.iter().enumerate() {
                let mut d2 = 0i32;
                for k in 0..width {
                    let pos = 2 * ((key >> (shift * k)) & mask) as i32 + 1;
                    let pg = 2 * i32::from(l[k]) + 1;
                    d2 += (pg - pos) * (pg - pos);
                }
                dist.push((d2, j as u16));
            }
            // The `nwant` smallest distinct distances; the entries within them, sorted by
            // (distance, index), are what ggml's full qsort followed by the cut-off keeps.
            let mut shells: Vec<i32> = Vec::with_capacity(nwant + 1);
            for &(d, _) in &dist {
                if shells.contains(&d) {
                    continue;
                }
                if shells.len() < nwant || shells.last().is_some_and(|&m| d < m) {
                    let pos = shells.partition_point(|&v| v < d);
                    shells.insert(pos, d);
                    shells.truncate(nwant);
                }
            }
            let limit = shells.last().copied().unwrap_or(i32::MAX);
            let mut near: Vec<(i32, u16)> = dist.iter().copied().filter(|d| d.0 <= limit).collect();
            near.sort_unstable();
            neighbours.extend(near.iter().map(|d| d.1));
        }
        start.push(neighbours.len() as u32);
        Lattice {
            width,
            shift,
            levels,
            map,
            start,
            neighbours,
        }
    }

    fn key_of(&self, l: &[i8]) -> usize {
        let mask = (1usize << self.shift) - 1;
        (0..self.width)
            .map(|k| (usize::from(l[k] as u8) & mask) << (self.shift * k))
            .sum()
    }

    /// The neighbour list of the (off-grid) key of levels `l`.
    pub(crate) fn neighbours_of(&self, l: &[i8]) -> &[u16] {
        let key = self.key_of(l);
        let (a, b) = (self.start[key] as usize, self.start[key + 1] as usize);
        &self.neighbours[a..b]
    }

    /// Grid index of the group with levels `l`, if it is on the grid.
    pub(crate) fn index(&self, l: &[i8]) -> Option<usize> {
        let m = *self.map.get(self.key_of(l))?;
        usize::try_from(m).ok()
    }

    /// `iq{2,3}_find_best_neighbour`: the neighbour of the (off-grid) key of `l` with the least
    /// weighted error at `scale`; writes its levels to `l` and returns its index.
    pub(crate) fn best_neighbour(
        &self,
        l: &mut [i8],
        xval: &[f32],
        w: &[f32],
        scale: f32,
    ) -> usize {
        let key = self.key_of(l);
        let (a, b) = (self.start[key] as usize, self.start[key + 1] as usize);
        let mut best_d2 = f32::MAX;
        let mut best = usize::from(self.neighbours.get(a).copied().unwrap_or(0));
        for &j in &self.neighbours[a..b] {
            let pg = &self.levels[usize::from(j)];
            let mut d2 = 0.0f32;
            for i in 0..self.width {
                let q = (2 * i32::from(pg[i]) + 1) as f32;
                let diff = scale * q - xval[i];
                d2 += w[i] * diff * diff;
            }
            if d2 < best_d2 {
                best_d2 = d2;
                best = usize::from(j);
            }
        }
        for (li, &g) in l.iter_mut().zip(&self.levels[best][..self.width]) {
            *li = g as i8;
        }
        best
    }

    /// The grid index for levels `l`, searching the neighbours (and rewriting `l`) when off grid.
    pub(crate) fn snap(&self, l: &mut [i8], xval: &[f32], w: &[f32], scale: f32) -> usize {
        match self.index(l) {
            Some(i) => i,
            None => self.best_neighbour(l, xval, w, scale),
        }
    }
}
