//! The page URL as a QR code on the terminal, for a phone's camera (`--qr`, as croc and
//! webwormhole offer): Unicode half blocks, two modules per character cell, so the URL of a
//! signaling room (50-80 characters: version 3-5, 29-37 modules) takes 19-23 lines of 37-45
//! columns with the quiet zone.
//!
//! Drawn for a dark terminal: the light modules and the quiet zone are blocks (the text
//! colour), the dark ones spaces (the background). Phone cameras also read the inverse, which
//! a light terminal shows.
//!
//! Boundaries: pure (returns text; the caller prints it); depends only on `qrcode`.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// `text` as a QR code drawn in half blocks, lines joined by `\n` (no trailing newline); `None`
/// when it is too long for a QR code (about 2,900 characters at this error correction).
///
/// Error correction level L: a screen has no stains, and the lowest level keeps the code
/// smallest, so its modules are the largest a terminal can show.
pub fn render(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text, EcLevel::L).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_url_is_a_square_with_a_quiet_zone() {
        let url = "http://192.168.1.20:8080/crimson-otter-42#P7xk2Vq9mN4sT8wL";
        let art = render(url).unwrap();
        let lines: Vec<&str> = art.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{art}");
        // Two modules per line: as many module rows as columns, give or take the odd one.
        assert_eq!(lines.len(), width.div_ceil(2), "{art}");
        assert!((29 + 8..=37 + 8).contains(&width), "version 3-5 with 4-module margins: {width}");
        assert!(lines[0].chars().all(|c| c == '█'), "the quiet zone is light: {}", lines[0]);
        assert!(art.chars().all(|c| matches!(c, '█' | '▀' | '▄' | ' ' | '\n')));
    }

    #[test]
    fn too_long_for_a_qr_code_is_none() {
        assert!(render(&"x".repeat(8000)).is_none());
    }
}
