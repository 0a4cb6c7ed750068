//! The terminal as the command line and the dashboard share it: the one reader of its input
//! (`tty`), the answers it gives to queries told apart from keys (`replies`), asking it once what
//! it draws (`probe`, through tmux too: `tmux`), and deciding from that how pictures are drawn
//! (`graphics`). Nothing here draws; `imaging::escapes` makes the pictures' escape sequences.

pub mod graphics;
pub mod probe;
pub mod replies;
pub mod tmux;
pub mod tty;

pub use graphics::{choose, Fit, Graphics, GraphicsChoice, Protocol};
pub use probe::probe;
