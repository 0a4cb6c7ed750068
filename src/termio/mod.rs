//! The terminal as the command line and the dashboard share it: the one reader of its input
//! (`tty`), the answers it gives to queries told apart from keys (`replies`), asking it once what
//! it draws (`probe`, through tmux too: `tmux`), and deciding from that how pictures are drawn
//! (`graphics`), with the colours half blocks reach the screen in (`colours`). Nothing here
//! draws; `imaging::protocols` makes the pictures' escape sequences.

pub mod colours;
pub mod graphics;
pub mod probe;
pub mod replies;
pub mod tmux;
pub mod tty;

pub use colours::Colours;
pub use graphics::{choose, Fit, Graphics, GraphicsChoice, Protocol};
pub use probe::probe;
