//! Geo commands over sorted sets whose scores are 52-bit geohashes, with
//! Redis's encoding (latitude limited to ±85.05112878, longitude bits
//! first), its haversine distance on a 6372797.560856 m sphere, and its
//! number formats (`%.4f` distances, `%.17Lf` coordinates).
//!
//! Searches visit the 3x3 geohash cells around the centre, as Redis's do:
//! the same cell size for the radius (or the box's half diagonal), the same
//! adjustments near the edges of the covered area and the poles, the cells
//! in the same order, each a range of scores read in order. So a search is
//! O(log n + m) rather than a scan of the whole set, and an unsorted
//! result, or one cut short by COUNT … ANY, holds the same members in the
//! same order as Redis's (which clients may come to rely on: Redis's own
//! tests do).

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{class, eq_ic, get_as, parse_f64, parse_i64, Args, CmdResult, Ctx};
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::{Ttl, Tx, Value, ZSet};

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("geoadd", -5, WRITE | DENYOOM, KeySpec::single(1), geoadd).doc(
        "geo",
        "3.2.0",
        "Adds one or more members to a geospatial index. The key is created if it doesn't exist.",
    ),
    CommandSpec::new("geodist", -4, READONLY, KeySpec::single(1), geodist).doc(
        "geo",
        "3.2.0",
        "Returns the distance between two members of a geospatial index.",
    ),
    CommandSpec::new("geohash", -2, READONLY, KeySpec::single(1), geohash).doc(
        "geo",
        "3.2.0",
        "Returns members from a geospatial index as geohash strings.",
    ),
    CommandSpec::new("geopos", -2, READONLY, KeySpec::single(1), geopos).doc(
        "geo",
        "3.2.0",
        "Returns the longitude and latitude of members from a geospatial index.",
    ),
    CommandSpec::new("geosearch", -7, READONLY, KeySpec::single(1), geosearch).doc(
        "geo",
        "6.2.0",
        "Queries a geospatial index for members inside an area of a box or a circle.",
    ),
    CommandSpec::new("geosearchstore", -8, WRITE | DENYOOM, KeySpec::range(1, 2, 1), geosearchstore).doc(
        "geo",
        "6.2.0",
        "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.",
    ),
    CommandSpec::new("georadius", -6, WRITE | DENYOOM | MOVABLEKEYS, KeySpec::single(1), georadius).doc(
        "geo",
        "3.2.0",
        "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.",
    ),
    CommandSpec::new("georadius_ro", -6, READONLY, KeySpec::single(1), georadius_ro).doc(
        "geo",
        "3.2.10",
        "Returns members from a geospatial index that are within a distance from a coordinate.",
    ),
    CommandSpec::new("georadiusbymember", -5, WRITE | DENYOOM | MOVABLEKEYS, KeySpec::single(1), georadiusbymember)
        .doc(
            "geo",
            "3.2.0",
            "Queries a geospatial index for members within a distance from a member, optionally stores the result.",
        ),
    CommandSpec::new("georadiusbymember_ro", -5, READONLY, KeySpec::single(1), georadiusbymember_ro).doc(
        "geo",
        "3.2.10",
        "Returns members from a geospatial index that are within a distance from a member.",
    ),
];

const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
const LON_MIN: f64 = -180.0;
const LON_MAX: f64 = 180.0;
const STEP: u32 = 26;
const EARTH_RADIUS_M: f64 = 6372797.560856;

/// Spreads the low 32 bits of `v` to the even bit positions.
fn spread(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// The inverse of `spread`: the even bits of `x`, packed.
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    (x | (x >> 16)) as u32
}

/// Redis's `geohashEncode`: `step` bits a coordinate, over the given
/// latitude range.
fn encode_at(lon: f64, lat: f64, lat_min: f64, lat_max: f64, step: u32) -> u64 {
    let lat_off = (lat - lat_min) / (lat_max - lat_min) * (1u64 << step) as f64;
    let lon_off = (lon - LON_MIN) / (LON_MAX - LON_MIN) * (1u64 << step) as f64;
    spread(lat_off as u32) | (spread(lon_off as u32) << 1)
}

/// A 52-bit score (GEOHASH's, over ±90 degrees of latitude, too).
fn encode(lon: f64, lat: f64, lat_min: f64, lat_max: f64) -> u64 {
    encode_at(lon, lat, lat_min, lat_max, STEP)
}

/// The centre of the cell a 52-bit hash names, clamped as Redis clamps.
fn decode(bits: u64) -> (f64, f64) {
    let (lon_min, lon_max, lat_min, lat_max) = Cell { bits, step: STEP }.area();
    let lon = ((lon_min + lon_max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((lat_min + lat_max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

fn rad(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (rad(lat2) - rad(lat1)).abs()
}

/// Redis's `geohashGetDistance` (haversine), in metres.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((rad(lon2) - rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let u = ((rad(lat2) - rad(lat1)) / 2.0).sin();
    let a = u * u + rad(lat1).cos() * rad(lat2).cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

fn unit_factor(a: &[u8]) -> Result<f64, CmdError> {
    match () {
        _ if eq_ic(a, "m") => Ok(1.0),
        _ if eq_ic(a, "km") => Ok(1000.0),
        _ if eq_ic(a, "ft") => Ok(0.3048),
        _ if eq_ic(a, "mi") => Ok(1609.34),
        _ => Err(CmdError::Err("unsupported unit provided. please use M, KM, FT, MI".into())),
    }
}

/// `%.17Lf` without trailing zeros: how Redis prints coordinates.
fn human(v: f64) -> String {
    let s = format!("{v:.17}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_string()
}

fn coord(v: f64, resp3: bool) -> Frame {
    if resp3 {
        Frame::Double(v)
    } else {
        Frame::bulk(human(v))
    }
}

fn read<'t>(tx: &'t mut Tx<'_>, key: &[u8]) -> Result<Option<&'t ZSet>, CmdError> {
    Ok(get_as(tx, key, Value::as_zset_mut)?.map(|z| &*z))
}

fn parse_lonlat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    let (lon, lat) = (parse_f64(lon)?, parse_f64(lat)?);
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(CmdError::Err(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]
fn geoadd(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut opts = Vec::new();
    while let Some(a) = args.peek() {
        if eq_ic(a, "nx") || eq_ic(a, "xx") || eq_ic(a, "ch") {
            opts.push(a);
            args.next();
        } else {
            break;
        }
    }
    let rest = args.rest();
    let (nx, xx) = (opts.iter().any(|o| eq_ic(o, "nx")), opts.iter().any(|o| eq_ic(o, "xx")));
    if rest.is_empty() || !rest.len().is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut triples = Vec::new();
    for t in rest.chunks(3) {
        let (lon, lat) = parse_lonlat(t[0], t[1])?;
        triples.push((encode(lon, lat, LAT_MIN, LAT_MAX), t[2]));
    }
    let ch = opts.iter().any(|o| eq_ic(o, "ch"));
    let lim = ctx.client.limits;
    let mut tx = ctx.lock(key);
    let exists = read(&mut tx, key)?.is_some();
    if !exists {
        if xx {
            return Ok(Frame::Integer(0));
        }
        let max_len = triples.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
        tx.set(key, Value::ZSet(ZSet::with_hint(triples.len(), max_len, &lim)), Ttl::Clear);
    }
    let z = get_as(&mut tx, key, Value::as_zset_mut)?.expect("present or just created");
    let (mut added, mut changed) = (0, 0);
    let mut effect: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), key.to_vec()];
    effect.extend(opts.iter().map(|o| o.to_vec()));
    for (bits, m) in &triples {
        let score = *bits as f64;
        match z.score(m) {
            Some(_) if nx => continue,
            None if xx => continue,
            Some(old) if old == score => continue,
            Some(_) => changed += 1,
            None => added += 1,
        }
        z.insert(m, score, &lim);
        effect.push(bits.to_string().into_bytes());
        effect.push(m.to_vec());
    }
    let empty = z.is_empty();
    if added + changed > 0 {
        // GEOADD is ZADD underneath, and Redis names its event so.
        tx.notify(class::ZSET, "zadd", key);
    }
    super::drop_if_empty(&mut tx, key, empty);
    if added + changed > 0 {
        let refs: Vec<&[u8]> = effect.iter().map(Vec::as_slice).collect();
        tx.emit(&refs);
        ctx.key_ready(key);
    }
    Ok(Frame::Integer(if ch { added + changed } else { added }))
}

/// GEOPOS key [member ...]
fn geopos(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let resp3 = ctx.resp3();
    let mut tx = ctx.lock(key);
    let z = read(&mut tx, key)?;
    let out = args.rest().into_iter().map(|m| match z.and_then(|z| z.score(m)) {
        Some(s) => {
            let (lon, lat) = decode(s as u64);
            Frame::Array(vec![coord(lon, resp3), coord(lat, resp3)])
        }
        None => Frame::NullArray,
    });
    Ok(Frame::Array(out.collect()))
}

/// GEODIST key member1 member2 [M|KM|FT|MI]
fn geodist(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (key, a, b) = (args.next_arg()?, args.next_arg()?, args.next_arg()?);
    let factor = match args.next() {
        Some(u) => unit_factor(u)?,
        None => 1.0,
    };
    args.finish()?;
    let mut tx = ctx.lock(key);
    let Some(z) = read(&mut tx, key)? else { return Ok(Frame::Null) };
    let (Some(sa), Some(sb)) = (z.score(a), z.score(b)) else { return Ok(Frame::Null) };
    let ((lon1, lat1), (lon2, lat2)) = (decode(sa as u64), decode(sb as u64));
    Ok(Frame::bulk(format!("{:.4}", distance(lon1, lat1, lon2, lat2) / factor)))
}

/// GEOHASH key [member ...]
fn geohash(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let key = args.next_arg()?;
    let mut tx = ctx.lock(key);
    let z = read(&mut tx, key)?;
    let out = args.rest().into_iter().map(|m| match z.and_then(|z| z.score(m)) {
        Some(s) => {
            // Re-encode with the standard ±90 latitude range.
            let (lon, lat) = decode(s as u64);
            let bits = encode(lon, lat, -90.0, 90.0);
            let text: Vec<u8> = (0..11)
                .map(|i| if i == 10 { ALPHABET[0] } else { ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize] })
                .collect();
            Frame::Bulk(Bytes::from(text))
        }
        None => Frame::Null,
    });
    Ok(Frame::Array(out.collect()))
}

enum From<'a> {
    Member(&'a [u8]),
    LonLat(f64, f64),
}

enum Shape {
    Radius(f64),
    /// Width and height, metres.
    Box(f64, f64),
}

struct Query<'a> {
    from: From<'a>,
    shape: Shape,
    /// Metres per requested unit.
    factor: f64,
    sort: Option<bool>,
    count: Option<(usize, bool)>,
    withcoord: bool,
    withdist: bool,
    withhash: bool,
    store: Option<(&'a [u8], bool)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Search,
    SearchStore,
    Radius,
    RadiusByMember,
}

/// Parses every form: GEOSEARCH(STORE) options, or GEORADIUS(BYMEMBER)'s
/// fixed centre and radius followed by options.
fn parse_query<'a>(args: &mut Args<'a>, flavor: Flavor, read_only: bool) -> Result<Query<'a>, CmdError> {
    let mut q = Query {
        from: From::LonLat(0.0, 0.0),
        shape: Shape::Radius(0.0),
        factor: 1.0,
        sort: None,
        count: None,
        withcoord: false,
        withdist: false,
        withhash: false,
        store: None,
    };
    let (mut have_from, mut have_by) = (false, false);
    match flavor {
        Flavor::Radius | Flavor::RadiusByMember => {
            q.from = if flavor == Flavor::Radius {
                let (lon, lat) = parse_lonlat(args.next_arg()?, args.next_arg()?)?;
                From::LonLat(lon, lat)
            } else {
                From::Member(args.next_arg()?)
            };
            let r = parse_f64(args.next_arg()?).map_err(|_| CmdError::Err("need numeric radius".into()))?;
            if r < 0.0 {
                return Err(CmdError::Err("radius cannot be negative".into()));
            }
            q.factor = unit_factor(args.next_arg()?)?;
            q.shape = Shape::Radius(r * q.factor);
            (have_from, have_by) = (true, true);
        }
        _ => {}
    }
    let search = matches!(flavor, Flavor::Search | Flavor::SearchStore);
    while let Some(opt) = args.next() {
        if eq_ic(opt, "withdist") {
            q.withdist = true;
        } else if eq_ic(opt, "withhash") {
            q.withhash = true;
        } else if eq_ic(opt, "withcoord") {
            q.withcoord = true;
        } else if eq_ic(opt, "any") {
            q.count = Some((q.count.map_or(0, |c| c.0), true));
        } else if eq_ic(opt, "asc") {
            q.sort = Some(true);
        } else if eq_ic(opt, "desc") {
            q.sort = Some(false);
        } else if eq_ic(opt, "count") {
            let n = parse_i64(args.next_arg()?)?;
            if n <= 0 {
                return Err(CmdError::Err("COUNT must be > 0".into()));
            }
            q.count = Some((n as usize, q.count.is_some_and(|c| c.1)));
        } else if !search && !read_only && eq_ic(opt, "store") {
            q.store = Some((args.next_arg()?, false));
        } else if !search && !read_only && eq_ic(opt, "storedist") {
            q.store = Some((args.next_arg()?, true));
        } else if flavor == Flavor::SearchStore && eq_ic(opt, "storedist") {
            q.store = Some((b"", true));
        } else if search && eq_ic(opt, "frommember") {
            if have_from {
                return Err(CmdError::Syntax);
            }
            q.from = From::Member(args.next_arg()?);
            have_from = true;
        } else if search && eq_ic(opt, "fromlonlat") {
            if have_from {
                return Err(CmdError::Syntax);
            }
            let (lon, lat) = parse_lonlat(args.next_arg()?, args.next_arg()?)?;
            q.from = From::LonLat(lon, lat);
            have_from = true;
        } else if search && eq_ic(opt, "byradius") {
            if have_by {
                return Err(CmdError::Syntax);
            }
            let r = parse_f64(args.next_arg()?).map_err(|_| CmdError::Err("need numeric radius".into()))?;
            if r < 0.0 {
                return Err(CmdError::Err("radius cannot be negative".into()));
            }
            q.factor = unit_factor(args.next_arg()?)?;
            q.shape = Shape::Radius(r * q.factor);
            have_by = true;
        } else if search && eq_ic(opt, "bybox") {
            if have_by {
                return Err(CmdError::Syntax);
            }
            let w = parse_f64(args.next_arg()?).map_err(|_| CmdError::Err("need numeric width".into()))?;
            let h = parse_f64(args.next_arg()?).map_err(|_| CmdError::Err("need numeric height".into()))?;
            if w < 0.0 || h < 0.0 {
                return Err(CmdError::Err("height or width cannot be negative".into()));
            }
            q.factor = unit_factor(args.next_arg()?)?;
            q.shape = Shape::Box(w * q.factor, h * q.factor);
            have_by = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if search && !have_from {
        return Err(CmdError::Err("exactly one of FROMMEMBER or FROMLONLAT can be specified for geosearch".into()));
    }
    if search && !have_by {
        return Err(CmdError::Err("exactly one of BYRADIUS and BYBOX can be specified for geosearch".into()));
    }
    let with_any = q.withdist || q.withhash || q.withcoord;
    if flavor == Flavor::SearchStore && with_any {
        return Err(CmdError::Err(
            "GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options".into(),
        ));
    }
    if q.store.is_some() && with_any {
        return Err(CmdError::Err(
            "STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options".into(),
        ));
    }
    if q.count.is_some_and(|(n, any)| any && n == 0) {
        return Err(CmdError::Err("the ANY argument requires COUNT argument".into()));
    }
    // COUNT without ANY implies nearest first.
    if q.sort.is_none() && q.count.is_some_and(|(_, any)| !any) {
        q.sort = Some(true);
    }
    Ok(q)
}

/// A cell of the geohash grid, `step` bits a coordinate (Redis's
/// GeoHashBits); `NO_CELL` is a neighbour left out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Cell {
    bits: u64,
    step: u32,
}

const NO_CELL: Cell = Cell { bits: 0, step: 0 };

/// Redis's `MERCATOR_MAX`: half the equator, in metres.
const MERCATOR_MAX: f64 = 20037726.37;

impl Cell {
    /// The cell of `step` holding a point (Redis's geohashEncode).
    fn of(lon: f64, lat: f64, step: u32) -> Cell {
        Cell { bits: encode_at(lon, lat, LAT_MIN, LAT_MAX, step), step }
    }

    /// (lon min, lon max, lat min, lat max) of the cell.
    fn area(self) -> (f64, f64, f64, f64) {
        let (ilat, ilon) = (squash(self.bits) as f64, squash(self.bits >> 1) as f64);
        let scale = (1u64 << self.step) as f64;
        let at = |i: f64, min: f64, max: f64| min + i / scale * (max - min);
        (
            at(ilon, LON_MIN, LON_MAX),
            at(ilon + 1.0, LON_MIN, LON_MAX),
            at(ilat, LAT_MIN, LAT_MAX),
            at(ilat + 1.0, LAT_MIN, LAT_MAX),
        )
    }

    /// The cell `dx` columns east and `dy` rows north, wrapping around
    /// (Redis's geohash_move_x and geohash_move_y: longitude bits are the
    /// odd ones).
    fn moved(self, dx: i8, dy: i8) -> Cell {
        let shift = 64 - self.step * 2;
        let step_bits = |mask: u64, d: i8, v: u64| {
            // The other coordinate's bits, set: a carry skips over them.
            let zz = !mask >> shift;
            let moved = match d {
                0 => return v,
                d if d > 0 => v.wrapping_add(zz + 1),
                _ => (v | zz).wrapping_sub(zz + 1),
            };
            moved & (mask >> shift)
        };
        let (x, y) = (self.bits & 0xAAAA_AAAA_AAAA_AAAA, self.bits & 0x5555_5555_5555_5555);
        Cell {
            bits: step_bits(0xAAAA_AAAA_AAAA_AAAA, dx, x) | step_bits(0x5555_5555_5555_5555, dy, y),
            step: self.step,
        }
    }

    /// The scores its points have: `[min, max)` (Redis's scoresOfGeoHashBox).
    fn scores(self) -> (f64, f64) {
        let shift = 52 - self.step * 2;
        ((self.bits << shift) as f64, ((self.bits + 1) << shift) as f64)
    }
}

/// Redis's geohashEstimateStepsByRadius.
fn steps_for(range_m: f64, lat: f64) -> u32 {
    if range_m == 0.0 {
        return 26;
    }
    let (mut range, mut step) = (range_m, 1i32);
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u32
}

/// The cells a search visits, in the order Redis visits them (its
/// geohashCalculateAreasByShapeWGS84 and membersOfAllNeighbors): the
/// centre's, then north, south, east, west, north-east, north-west,
/// south-east, south-west, those outside the search's bounding box left
/// out.
fn cells(shape: &Shape, (lon, lat): (f64, f64)) -> [Cell; 9] {
    let deg = |r: f64| r / (std::f64::consts::PI / 180.0);
    let (half_h, half_w, range) = match *shape {
        Shape::Radius(r) => (r, r, r),
        Shape::Box(w, h) => (h / 2.0, w / 2.0, ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt()),
    };
    let lat_delta = deg(half_h / EARTH_RADIUS_M);
    let lon_delta_top = deg(half_w / EARTH_RADIUS_M / rad(lat + lat_delta).cos());
    let lon_delta_bottom = deg(half_w / EARTH_RADIUS_M / rad(lat - lat_delta).cos());
    let lon_delta = if lat < 0.0 { lon_delta_bottom } else { lon_delta_top };
    let (min_lon, max_lon, min_lat, max_lat) = (lon - lon_delta, lon + lon_delta, lat - lat_delta, lat + lat_delta);
    let around = |step: u32| {
        let c = Cell::of(lon, lat, step);
        [
            c,
            c.moved(0, 1),
            c.moved(0, -1),
            c.moved(1, 0),
            c.moved(-1, 0),
            c.moved(1, 1),
            c.moved(-1, 1),
            c.moved(1, -1),
            c.moved(-1, -1),
        ]
    };
    let mut step = steps_for(range, lat);
    let mut n = around(step);
    // A cell too large near an edge of the area: one step finer.
    let too_coarse =
        n[1].area().3 < max_lat || n[2].area().2 > min_lat || n[3].area().1 < max_lon || n[4].area().0 > min_lon;
    if step > 1 && too_coarse {
        step -= 1;
        n = around(step);
    }
    if step >= 2 {
        let (a_min_lon, a_max_lon, a_min_lat, a_max_lat) = n[0].area();
        let mut drop = |i: &[usize]| i.iter().for_each(|&i| n[i] = NO_CELL);
        if a_min_lat < min_lat {
            drop(&[2, 8, 7]);
        }
        if a_max_lat > max_lat {
            drop(&[1, 5, 6]);
        }
        if a_min_lon < min_lon {
            drop(&[4, 8, 6]);
        }
        if a_max_lon > max_lon {
            drop(&[3, 7, 5]);
        }
    }
    n
}

/// The point a score names and its distance from `centre`, if within the
/// shape (Redis's geoWithinShape).
fn within(shape: &Shape, centre: (f64, f64), bits: u64) -> Option<(f64, f64, f64)> {
    let (lon, lat) = decode(bits);
    let d = match *shape {
        Shape::Radius(r) => Some(distance(centre.0, centre.1, lon, lat)).filter(|d| *d <= r)?,
        Shape::Box(w, h) => {
            // The width is measured along the point's own parallel, as
            // Redis's geohashGetDistanceIfInRectangle does.
            if lat_distance(lat, centre.1) > h / 2.0 || distance(lon, lat, centre.0, lat) > w / 2.0 {
                return None;
            }
            distance(centre.0, centre.1, lon, lat)
        }
    };
    Some((d, lon, lat))
}

/// (member, geohash, distance in metres, lon, lat) for every member in range.
fn search(z: &ZSet, q: &Query<'_>, centre: (f64, f64)) -> Vec<(Bytes, u64, f64, f64, f64)> {
    let mut hits = Vec::new();
    let limit = q.count.filter(|(_, any)| *any).map(|(n, _)| n);
    let full = |hits: &Vec<_>| limit.is_some_and(|n| !hits.is_empty() && hits.len() >= n);
    let cells = cells(&q.shape, centre);
    // Huge radii make neighbours repeat: Redis skips a cell equal to the
    // one it read last (but never compares with the centre's, index 0).
    let mut last = 0;
    for (i, cell) in cells.iter().enumerate() {
        if *cell == NO_CELL || (last != 0 && *cell == cells[last]) {
            continue;
        }
        if full(&hits) {
            break;
        }
        let (min, max) = cell.scores();
        for e in z.iter_from(z.partition_point(|e| e.score < min)) {
            if e.score >= max {
                break;
            }
            let bits = e.score as u64;
            if let Some((d, lon, lat)) = within(&q.shape, centre, bits) {
                hits.push((Bytes::copy_from_slice(e.member), bits, d, lon, lat));
            }
            if full(&hits) {
                break;
            }
        }
        last = i;
    }
    if let Some(asc) = q.sort {
        hits.sort_by(|a, b| {
            let o = a.2.partial_cmp(&b.2).unwrap_or(std::cmp::Ordering::Equal);
            if asc {
                o
            } else {
                o.reverse()
            }
        });
    }
    if let Some((n, _)) = q.count {
        hits.truncate(n);
    }
    hits
}

fn run(ctx: &mut Ctx<'_>, mut args: Args<'_>, flavor: Flavor, read_only: bool) -> CmdResult {
    let store_dst = if flavor == Flavor::SearchStore { Some(args.next_arg()?) } else { None };
    let key = args.next_arg()?;
    let mut q = parse_query(&mut args, flavor, read_only)?;
    if let (Some(dst), Some((_, dist))) = (store_dst, q.store) {
        q.store = Some((dst, dist));
    } else if let Some(dst) = store_dst {
        q.store = Some((dst, false));
    }
    let (resp3, lim) = (ctx.resp3(), ctx.client.limits);
    let mut tx = match q.store {
        Some((dst, _)) => ctx.lock_keys([key, dst]),
        None => ctx.lock(key),
    };
    let hits = match read(&mut tx, key)? {
        None => vec![],
        Some(z) => {
            let centre = match q.from {
                From::LonLat(lon, lat) => (lon, lat),
                From::Member(m) => match z.score(m) {
                    Some(s) => decode(s as u64),
                    None => return Err(CmdError::Err("could not decode requested zset member".into())),
                },
            };
            search(z, &q, centre)
        }
    };
    let Some((dst, storedist)) = q.store else {
        let out = hits.into_iter().map(|(m, bits, d, lon, lat)| {
            if !(q.withdist || q.withhash || q.withcoord) {
                return Frame::Bulk(m);
            }
            let mut row = vec![Frame::Bulk(m)];
            if q.withdist {
                row.push(Frame::bulk(format!("{:.4}", d / q.factor)));
            }
            if q.withhash {
                row.push(Frame::Integer(bits as i64));
            }
            if q.withcoord {
                row.push(Frame::Array(vec![coord(lon, resp3), coord(lat, resp3)]));
            }
            Frame::Array(row)
        });
        return Ok(Frame::Array(out.collect()));
    };
    if hits.is_empty() {
        return super::store_nothing(&mut tx, dst);
    }
    let mut z = ZSet::with_hint(hits.len(), hits.iter().map(|h| h.0.len()).max().unwrap_or(0), &lim);
    let mut effect: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), dst.to_vec()];
    for (m, bits, d, _, _) in &hits {
        let score = if storedist { d / q.factor } else { *bits as f64 };
        z.insert(m, score, &lim);
        effect.push(larder_protocol::format_double(score).into_bytes());
        effect.push(m.to_vec());
    }
    let n = z.len();
    tx.set(dst, Value::ZSet(z), Ttl::Clear);
    tx.emit(&[b"DEL", dst]);
    let refs: Vec<&[u8]> = effect.iter().map(Vec::as_slice).collect();
    tx.emit(&refs);
    let event = if flavor == Flavor::SearchStore { "geosearchstore" } else { "georadiusstore" };
    tx.notify(class::ZSET, event, dst);
    ctx.key_ready(dst);
    Ok(Frame::Integer(n as i64))
}

fn geosearch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Flavor::Search, true)
}

fn geosearchstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Flavor::SearchStore, false)
}

fn georadius(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Flavor::Radius, false)
}

fn georadius_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Flavor::Radius, true)
}

fn georadiusbymember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Flavor::RadiusByMember, false)
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    run(ctx, args, Flavor::RadiusByMember, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_numbers() {
        // GEOADD g 13.361389 38.115556 Palermo on redis-server 7.0.
        let bits = encode(13.361389, 38.115556, LAT_MIN, LAT_MAX);
        assert_eq!(bits, 3479099956230698);
        let (lon, lat) = decode(bits);
        assert_eq!((human(lon).as_str(), human(lat).as_str()), ("13.36138933897018433", "38.11555639549629859"));
        let catania = decode(encode(15.087269, 37.502669, LAT_MIN, LAT_MAX));
        assert_eq!(format!("{:.4}", distance(lon, lat, catania.0, catania.1) / 1000.0), "166.2742");
    }
}
