//! The report's chart as a PNG (email clients do not show SVG): per day, a blue bar for the
//! reminders sent and a green one for the purchases after them, on a light grid. Drawn in-process
//! into a pixel buffer, with no text (the numbers are in the table beside it), so that no system
//! font is needed.

use anyhow::Context;

use crate::store::report::ReportDay;

/// The chart's size in pixels.
pub const WIDTH: u32 = 560;
/// The chart's size in pixels.
pub const HEIGHT: u32 = 200;

const BACKGROUND: [u8; 3] = [0xff, 0xff, 0xff];
const GRID: [u8; 3] = [0xe4, 0xe4, 0xe7];
const AXIS: [u8; 3] = [0xa1, 0xa1, 0xaa];
const SENT: [u8; 3] = [0x25, 0x63, 0xeb];
const RECOVERED: [u8; 3] = [0x16, 0xa3, 0x4a];

struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Canvas {
        let mut pixels = Vec::with_capacity((WIDTH * HEIGHT * 3) as usize);
        for _ in 0..WIDTH * HEIGHT {
            pixels.extend_from_slice(&BACKGROUND);
        }
        Canvas { pixels }
    }

    /// Fills the rectangle `[x0, x1) x [y0, y1)` (clipped to the canvas).
    fn fill(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, colour: [u8; 3]) {
        for y in y0.min(HEIGHT)..y1.min(HEIGHT) {
            for x in x0.min(WIDTH)..x1.min(WIDTH) {
                let i = ((y * WIDTH + x) * 3) as usize;
                self.pixels[i..i + 3].copy_from_slice(&colour);
            }
        }
    }
}

/// The chart of `days` as PNG bytes.
pub fn png(days: &[ReportDay]) -> anyhow::Result<Vec<u8>> {
    let (left, right, top, bottom) = (12u32, WIDTH - 12, 12u32, HEIGHT - 16);
    let mut canvas = Canvas::new();
    for i in 0..=4 {
        let y = top + (bottom - top) * i / 4;
        canvas.fill(left, y, right, y + 1, GRID);
    }
    let most = days
        .iter()
        .map(|d| d.sent.max(d.recovered))
        .max()
        .unwrap_or(0)
        .max(1) as u64;
    let n = days.len().max(1) as u32;
    let slot = (right - left) / n;
    let bar = (slot / 3).max(2);
    for (i, d) in days.iter().enumerate() {
        let x = left + slot * i as u32 + (slot - 2 * bar) / 2;
        let height = |v: i64| ((v.max(0) as u64 * u64::from(bottom - top)) / most) as u32;
        let sent = height(d.sent);
        let recovered = height(d.recovered);
        canvas.fill(x, bottom - sent, x + bar, bottom, SENT);
        canvas.fill(x + bar, bottom - recovered, x + 2 * bar, bottom, RECOVERED);
        // A tick under each day.
        canvas.fill(x + bar - 1, bottom, x + bar + 1, bottom + 5, AXIS);
    }
    canvas.fill(left, bottom, right, bottom + 1, AXIS);

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("cannot write the chart")?;
    writer
        .write_image_data(&canvas.pixels)
        .context("cannot write the chart")?;
    writer.finish().context("cannot write the chart")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_a_png_of_its_size_with_the_bars_in_it() {
        let days: Vec<ReportDay> = (0..7i64)
            .map(|i| ReportDay {
                date: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
                    + chrono::Days::new(i as u64),
                sent: 10 * i,
                recovered: i,
            })
            .collect();
        let bytes = png(&days).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let pixels = &buf[..info.buffer_size()];
        assert!(pixels.chunks(3).any(|p| p == SENT));
        assert!(pixels.chunks(3).any(|p| p == RECOVERED));
    }
}
