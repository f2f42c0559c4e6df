//! Text for the PDF's built-in Helvetica: encoded as WinAnsi (the one encoding every PDF
//! reader has for the standard 14 fonts, so no font is embedded) and measured with the
//! fonts' own metrics (Adobe's AFM files), so a cell can be cut to its column.
//!
//! Invariant: any text encodes. A character WinAnsi lacks (Cyrillic, CJK, an emoji, a control
//! character) becomes `?`, never an error and never a byte that breaks the string.

/// The two faces the report uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Regular,
    Bold,
}

/// WinAnsi's codes 0x80–0x9F, which differ from Latin-1 (0 = unused).
const HIGH: [char; 32] = [
    '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0', '‘',
    '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
];

/// The WinAnsi byte of `c`, or `?`.
pub fn byte_of(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        // Layout characters would move the text: a space keeps the words apart.
        '\t' | '\n' | '\r' => b' ',
        _ => HIGH
            .iter()
            .position(|h| *h == c && c != '\0')
            .map_or(b'?', |i| 0x80 + i as u8),
    }
}

/// `text` as WinAnsi bytes.
pub fn encode(text: &str) -> Vec<u8> {
    text.chars().map(byte_of).collect()
}

/// Helvetica's advance widths of ASCII 32–126, in 1/1000 em.
const REGULAR_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // ' '…'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584,
    556, // '0'…'?'
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722,
    778, // '@'…'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
    556, // 'P'…'_'
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556,
    556, // '`'…'o'
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p'…'~'
];

/// Helvetica-Bold's advance widths of ASCII 32–126, in 1/1000 em.
const BOLD_ASCII: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278,
    278, // ' '…'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584,
    611, // '0'…'?'
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722,
    778, // '@'…'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584,
    556, // 'P'…'_'
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611,
    611, // '`'…'o'
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, // 'p'…'~'
];

/// The ASCII letter whose width an accented Latin-1 letter has (`é` is as wide as `e`).
fn base_letter(byte: u8) -> Option<u8> {
    Some(match byte {
        0xC0..=0xC5 => b'A',
        0xC7 => b'C',
        0xC8..=0xCB => b'E',
        0xCC..=0xCF => b'I',
        0xD1 => b'N',
        0xD2..=0xD6 | 0xD8 => b'O',
        0xD9..=0xDC => b'U',
        0xDD => b'Y',
        0xE0..=0xE5 => b'a',
        0xE7 => b'c',
        0xE8..=0xEB => b'e',
        0xEC..=0xEF => b'i',
        0xF1 => b'n',
        0xF2..=0xF6 | 0xF8 => b'o',
        0xF9..=0xFC => b'u',
        0xFD | 0xFF => b'y',
        _ => return None,
    })
}

/// The width of one WinAnsi byte in 1/1000 em. Bytes beyond ASCII that are not accented
/// letters get the widest glyph's width (`…`, `—`, `™` and `Æ` are 1000): a cell is then cut a
/// little early, never drawn past its column.
pub fn width_of(byte: u8, face: Face) -> u16 {
    let table = match face {
        Face::Regular => &REGULAR_ASCII,
        Face::Bold => &BOLD_ASCII,
    };
    let byte = base_letter(byte).unwrap_or(byte);
    match byte {
        b' '..=b'~' => table[usize::from(byte - b' ')],
        _ => 1000,
    }
}

/// The width of `bytes` set in `face` at `size` points.
pub fn width(bytes: &[u8], face: Face, size: f32) -> f32 {
    let units: u32 = bytes.iter().map(|b| u32::from(width_of(*b, face))).sum();
    units as f32 * size / 1000.0
}

/// WinAnsi's ellipsis.
pub const ELLIPSIS: u8 = 0x85;

/// `text` encoded and cut to fit `max` points, ending in an ellipsis when it was cut.
pub fn fit(text: &str, face: Face, size: f32, max: f32) -> Vec<u8> {
    fit_encoded(encode(text), face, size, max)
}

/// [`fit`] for text already encoded.
fn fit_encoded(mut bytes: Vec<u8>, face: Face, size: f32, max: f32) -> Vec<u8> {
    if width(&bytes, face, size) <= max {
        return bytes;
    }
    let budget = max - width(&[ELLIPSIS], face, size);
    let mut used = 0.0;
    let mut keep = 0;
    for b in &bytes {
        let w = f32::from(width_of(*b, face)) * size / 1000.0;
        if used + w > budget {
            break;
        }
        used += w;
        keep += 1;
    }
    bytes.truncate(keep);
    // A word cut after a space reads better without the space.
    while bytes.last() == Some(&b' ') {
        bytes.pop();
    }
    bytes.push(ELLIPSIS);
    bytes
}

/// `text` broken at spaces into at most `max_lines` lines of at most `max` points each; the
/// last line is cut with an ellipsis when the text goes on. Always at least one line.
pub fn wrap(text: &str, face: Face, size: f32, max: f32, max_lines: usize) -> Vec<Vec<u8>> {
    let space = width(b" ", face, size);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut line_width = 0.0;
    let mut words = text.split_whitespace().peekable();
    while let Some(word) = words.peek() {
        let encoded = encode(word);
        let word_width = width(&encoded, face, size);
        let needed = if line.is_empty() {
            word_width
        } else {
            line_width + space + word_width
        };
        if needed <= max {
            if !line.is_empty() {
                line.push(b' ');
            }
            line.extend_from_slice(&encoded);
            line_width = needed;
            words.next();
            continue;
        }
        if lines.len() + 1 == max_lines || line.is_empty() {
            // The last line (or a word longer than a whole line): the rest, cut to fit.
            let rest: Vec<&str> = words.collect();
            lines.push(fit_encoded(tail_bytes(&line, &rest), face, size, max));
            return lines;
        }
        lines.push(std::mem::take(&mut line));
        line_width = 0.0;
    }
    lines.push(line);
    lines
}

/// The bytes of a line so far followed by the remaining words.
fn tail_bytes(line: &[u8], rest: &[&str]) -> Vec<u8> {
    let mut bytes = line.to_vec();
    for word in rest {
        if !bytes.is_empty() {
            bytes.push(b' ');
        }
        bytes.extend(encode(word));
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_text_encodes_and_the_rest_becomes_a_question_mark() {
        assert_eq!(encode("Zoë"), b"Zo\xeb");
        assert_eq!(encode("Ærø €5 – “ok”"), b"\xc6r\xf8 \x805 \x96 \x93ok\x94");
        assert_eq!(encode("Москва 会议 📞"), b"?????? ?? ?");
        assert_eq!(encode("a\tb\nc\u{7}"), b"a b c?");
        // A char whose code is the HIGH table's gap marker is not WinAnsi.
        assert_eq!(encode("\u{0}"), b"?");
    }

    #[test]
    fn widths_follow_the_metrics() {
        assert!((width(b"0123456789", Face::Regular, 10.0) - 55.6).abs() < 1e-3);
        assert!(width(b"iiii", Face::Regular, 10.0) < width(b"WWWW", Face::Regular, 10.0));
        assert!(width(b"abc", Face::Bold, 10.0) > width(b"abc", Face::Regular, 10.0));
        assert_eq!(width_of(0xE9, Face::Regular), width_of(b'e', Face::Regular));
        assert_eq!(width_of(ELLIPSIS, Face::Regular), 1000);
    }

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_the_last_line() {
        let text = |lines: &[Vec<u8>]| -> Vec<String> {
            lines
                .iter()
                .map(|l| l.iter().map(|b| char::from(*b)).collect())
                .collect()
        };
        // 100 points of 8-point Helvetica hold about 20 characters.
        let lines = wrap(
            "Fetched its current configuration.",
            Face::Regular,
            8.0,
            100.0,
            2,
        );
        assert_eq!(text(&lines), ["Fetched its current", "configuration."]);
        for line in &lines {
            assert!(width(line, Face::Regular, 8.0) <= 100.0);
        }
        assert_eq!(
            text(&wrap("short", Face::Regular, 8.0, 100.0, 2)),
            ["short"]
        );
        assert_eq!(text(&wrap("", Face::Regular, 8.0, 100.0, 2)), [""]);
        let long =
            "Its files changed since it last fetched them: re-provision it (resync) or restart it.";
        let lines = wrap(long, Face::Regular, 8.0, 100.0, 2);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].last(), Some(&ELLIPSIS));
        assert!(width(&lines[1], Face::Regular, 8.0) <= 100.0);
        // One line only: the same as `fit`.
        assert_eq!(
            wrap(long, Face::Regular, 8.0, 100.0, 1),
            [fit(long, Face::Regular, 8.0, 100.0)]
        );
        // A word longer than the line is cut, not lost.
        let lines = wrap(
            "0123456789012345678901234567890 tail",
            Face::Regular,
            8.0,
            60.0,
            2,
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].last(), Some(&ELLIPSIS));
    }

    #[test]
    fn fit_cuts_long_text_with_an_ellipsis_inside_the_width() {
        assert_eq!(fit("201", Face::Regular, 8.0, 100.0), b"201");
        let long = "Files changed since its last fetch: re-provision it";
        let cut = fit(long, Face::Regular, 8.0, 60.0);
        assert_eq!(cut.last(), Some(&ELLIPSIS));
        assert!(width(&cut, Face::Regular, 8.0) <= 60.0, "{cut:?}");
        assert!(cut.len() > 5, "{cut:?}");
        assert!(long.as_bytes().starts_with(&cut[..cut.len() - 1]));
        // Nothing fits: only the ellipsis.
        assert_eq!(fit(long, Face::Regular, 8.0, 8.0), [ELLIPSIS]);
    }
}
