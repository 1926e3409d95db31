//! LOLWUT [VERSION v] [args…]: Redis's computer art, drawn as Redis draws
//! it. Version 5 is Georg Nees's "Schotter" in braille characters, version
//! 6 a city skyline in terminal colours, and any other version (the
//! default, as Larder reports Redis 7.2) just the version line. The art is
//! random, as Redis's is, so only its shape can be compared.

use super::table::{flags::*, CommandSpec, KeySpec};
use super::{parse_i64, Args, CmdResult, Ctx};
use crate::cmd::connection::REDIS_VERSION;
use bytes::Bytes;
use larder_protocol::Frame;

pub(super) static COMMANDS: &[CommandSpec] = &[CommandSpec::new("lolwut", -1, READONLY | FAST, KeySpec::NONE, lolwut)
    .doc("server", "5.0.0", "Displays computer art and the Redis version")];

fn lolwut(_ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let mut rest = args.rest();
    let mut version = REDIS_VERSION.to_string();
    if rest.len() >= 2 && rest[0].eq_ignore_ascii_case(b"version") {
        version = format!("{}.0.0", parse_i64(rest[1])? as u32);
        rest.drain(..2);
    }
    let v = version.as_bytes();
    let numbers = |defaults: &[i64]| -> Result<Vec<i64>, crate::error::CmdError> {
        defaults
            .iter()
            .enumerate()
            .map(|(i, d)| rest.get(i).map_or(Ok(*d), |a| parse_i64(a)).map(|n| n.clamp(1, 1000)))
            .collect()
    };
    let major = |m: u8, nine: bool| v[0] == m && v[1] == b'.' && (v[2] == b'9') == nine;
    let text = if major(b'5', false) || major(b'4', true) {
        let n = numbers(&[66, 8, 12])?;
        // Squares per row and column stop at 200.
        let canvas = schotter(n[0] as usize, n[1].min(200) as usize, n[2].min(200) as usize);
        format!("{}\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {REDIS_VERSION}\n", canvas.braille())
    } else if major(b'6', false) || major(b'5', true) {
        let n = numbers(&[80, 20])?;
        let mut canvas = Canvas::new(n[0] as usize, n[1] as usize, 3);
        skyline(&mut canvas);
        format!(
            "{}\nDedicated to the 8 bit game developers of past and present.\nOriginal 8 bit image from Plaguemon by \
             hikikomori. Redis ver. {REDIS_VERSION}\n",
            canvas.colours()
        )
    } else {
        format!("Redis ver. {REDIS_VERSION}\n")
    };
    Ok(Frame::Verbatim { format: *b"txt", text: Bytes::from(text) })
}

struct Canvas {
    width: i64,
    height: i64,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize, colour: u8) -> Canvas {
        Canvas { width: width as i64, height: height as i64, pixels: vec![colour; width * height] }
    }

    fn set(&mut self, x: i64, y: i64, colour: u8) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize] = colour;
        }
    }

    fn get(&self, x: i64, y: i64) -> u8 {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            self.pixels[(x + y * self.width) as usize]
        } else {
            0
        }
    }

    /// Bresenham's line.
    fn line(&mut self, (mut x1, mut y1): (i64, i64), (x2, y2): (i64, i64)) {
        let (dx, dy) = ((x2 - x1).abs(), (y2 - y1).abs());
        let (sx, sy) = (if x1 < x2 { 1 } else { -1 }, if y1 < y2 { 1 } else { -1 });
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, 1);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square of side `size` centred on (x, y), turned by `angle`.
    fn square(&mut self, x: i64, y: i64, size: f32, angle: f32) {
        // The side of a square inscribed in a circle of radius 1 is √2.
        let size = (size / std::f32::consts::SQRT_2).round() as f64;
        let mut k = std::f32::consts::FRAC_PI_4 + angle;
        let mut corners = [(0i64, 0i64); 4];
        for c in &mut corners {
            *c = (
                ((k as f64).sin() * size + x as f64).round() as i64,
                ((k as f64).cos() * size + y as f64).round() as i64,
            );
            k += std::f32::consts::FRAC_PI_2;
        }
        for j in 0..4 {
            self.line(corners[j], corners[(j + 1) % 4]);
        }
    }

    /// Two by four pixels a braille character.
    fn braille(&self) -> String {
        let mut out = String::new();
        for y in (0..self.height).step_by(4) {
            for x in (0..self.width).step_by(2) {
                let dots = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)];
                let byte = dots
                    .iter()
                    .enumerate()
                    .fold(0u32, |b, (bit, &(dx, dy))| b | (u32::from(self.get(x + dx, y + dy) != 0) << bit));
                out.push(char::from_u32(0x2800 + byte).expect("a braille code point"));
            }
            if y != self.height - 1 {
                out.push('\n');
            }
        }
        out
    }

    /// A space a pixel, in the terminal colours Redis uses (black, two
    /// greys, white).
    fn colours(&self) -> String {
        let mut out = String::new();
        for y in 0..self.height {
            for x in 0..self.width {
                let code = match self.get(x, y) {
                    1 => "0;90;100m",
                    2 => "0;37;47m",
                    3 => "0;97;107m",
                    _ => "0;30;40m",
                };
                out.push_str(&format!("\x1b[{code} \x1b[0m"));
            }
            if y != self.height - 1 {
                out.push('\n');
            }
        }
        out
    }
}

/// C's `rand()`, as Redis's art calls it: a non-negative int.
fn rand_int() -> i64 {
    rand::random_range(0..i32::MAX as i64)
}

fn rand_unit() -> f32 {
    rand_int() as f32 / i32::MAX as f32
}

/// Georg Nees's Schotter: rows of squares, turned and shifted more at
/// random the lower they are.
fn schotter(cols: usize, per_row: usize, per_col: usize) -> Canvas {
    let width = cols as i64 * 2;
    let padding = if width > 4 { 2 } else { 0 };
    let side = (width - padding * 2) as f32 / per_row as f32;
    let height = (side * per_col as f32) as i64 + padding * 2;
    let mut canvas = Canvas::new(width as usize, height as usize, 0);
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i64;
            let mut angle = 0.0;
            if y > 1 {
                let mut r = [0f32; 3];
                for v in &mut r {
                    *v = rand_unit() / per_col as f32 * y as f32;
                }
                for v in &mut r {
                    if rand_int() % 2 == 1 {
                        *v = -*v;
                    }
                }
                angle = r[0];
                sx += (r[1] * side / 3.0) as i64;
                sy += (r[2] * side / 3.0) as i64;
            }
            canvas.square(sx, sy, side, angle);
        }
    }
    canvas
}

/// A city skyline: two rows of grey towers behind, black ones with lit
/// windows in front.
fn skyline(canvas: &mut Canvas) {
    let h = canvas.height;
    for colour in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += rand_int() % 8;
            let width = 10 + rand_int() % 9;
            let height = if colour == 2 { h / 2 + rand_int() % h / 2 } else { h / 2 + rand_int() % h / 3 };
            tower(canvas, offset, width, height, false, colour);
            offset += if colour == 2 { width / 2 } else { width + 1 };
        }
    }
    let mut offset = -10;
    while offset < canvas.width {
        offset += rand_int() % 8;
        let mut width = 5 + rand_int() % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + rand_int() % h / 2;
        tower(canvas, offset, width, height, true, 0);
        offset += width + 5;
    }
}

fn tower(canvas: &mut Canvas, xoff: i64, width: i64, height: i64, windows: bool, colour: u8) {
    let start = canvas.height - 1;
    let end = start - height + 1;
    for y in (end..=start).rev() {
        for x in xoff..xoff + width {
            // The roof is four pixels narrower.
            if y == end && (x <= xoff + 1 || x >= xoff + width - 2) {
                continue;
            }
            let mut c = colour;
            if windows && x > xoff + 1 && x < xoff + width - 2 && y > end + 1 && y < start - 1 {
                let (relx, rely) = (x - (xoff + 1), y - (end + 1));
                // Windows two pixels wide, one tall (terminal cells are
                // not square), each a random grey.
                if (relx / 2) % 2 == 1 && rely % 2 == 1 {
                    c = loop {
                        let g = 1 + (rand_int() % 2) as u8;
                        if g != colour {
                            break g;
                        }
                    };
                    if relx % 2 == 1 {
                        c = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, c);
        }
    }
}
