//! Every key of the dashboard in one table: which keys do what, on which screen, and how the
//! footer and the help screen name them. The key handler ([`action_for`]), each screen's footer
//! (its commands, [`view_commands`]) and the help screen all read [`COMMANDS`], so a key cannot
//! work without being listed, or be listed without working.
//!
//! One table whose scopes name the screens ([`View`]), rather than a list kept beside each
//! screen: the help screen wants every screen's keys at once, and one table shows at a glance that
//! no key means two things on one screen. Each screen turns the actions of its scope into what it
//! does (`views`); the answers to the quit and stop questions are part of those questions' text.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The dashboard's screens, in tab order: each is a scope of the keymap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Training,
    Samples,
    Model,
    Results,
    Browser,
    /// The scan view (`crackscope watch SCAN_FOLDER`), a screen of its own: the run dashboard's
    /// tabs and their keys do not apply there.
    Scan,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Training,
        View::Samples,
        View::Model,
        View::Results,
        View::Browser,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Training => "Training",
            View::Samples => "Samples",
            View::Model => "Model",
            View::Results => "Results",
            View::Browser => "Browser",
            View::Scan => "Scan",
        }
    }

    /// The position among the run dashboard's tabs (the scan view has none: 0).
    pub fn index(self) -> usize {
        View::ALL.iter().position(|&v| v == self).unwrap_or(0)
    }

    /// Whether it is a tab of the run's dashboard, where the keys that work everywhere apply.
    pub fn is_tab(self) -> bool {
        View::ALL.contains(&self)
    }
}

/// What a key asks of the dashboard. Movement actions mean what the current view makes of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    NextView,
    PreviousView,
    ShowView(View),
    Pause,
    Stop,
    SaveCheckpoint,
    Next,
    Previous,
    Down,
    Up,
    PageDown,
    PageUp,
    First,
    Last,
    ToggleGrid,
    NextMisclassified,
    FilterTruth,
    FilterPredicted,
    CycleOrder,
    ToggleOverlay,
    MoreOpaque,
    LessOpaque,
    SavePicture,
    CycleMethod,
    CycleLayer,
    CycleExplainedClass,
    // The scan view's own (see `View::Scan`).
    PanLeft,
    PanRight,
    PanUp,
    PanDown,
    ZoomIn,
    ZoomOut,
    ZoomFit,
    ToggleMap,
    ToggleMask,
    ToggleWindows,
    ToggleRegions,
    NextRegion,
    PreviousRegion,
    ToggleTruth,
    ToggleSweep,
    // Labelling windows in the scan view (`tui::scan::labelling`).
    LabelSuggested,
    LabelTopScored,
    LabelTypical,
    LabelUnderCursor,
    LabelCrack,
    LabelNoCrack,
    LabelSkip,
    LabelUndo,
}

/// A key, with Ctrl or without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    /// Needs Ctrl held. Keys without it match whatever modifiers are held (Shift gives 'F').
    pub ctrl: bool,
}

const fn key(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn char(c: char) -> Key {
    key(KeyCode::Char(c))
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

/// Where a command works: on every tab of the run's dashboard, or on one screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Everywhere,
    In(View),
}

/// One line of the help screen and the keys behind it.
pub struct Command {
    pub scope: Scope,
    pub bindings: &'static [(Key, Action)],
    /// The keys as the help screen writes them.
    pub keys: &'static str,
    /// What they do, for the help screen.
    pub help: &'static str,
    /// Short (keys, label) pairs for the footer, which shows those of the current view in table
    /// order (most useful first) until the line is full.
    pub footer: &'static [(&'static str, &'static str)],
}

/// The dashboard's keys. Commands that work everywhere come first: they win over a view's own
/// use of the same key (Ctrl-C quits, `c` saves a checkpoint).
pub const COMMANDS: &[Command] = &[
    Command {
        scope: Scope::Everywhere,
        bindings: &[
            (char('1'), Action::ShowView(View::Training)),
            (char('2'), Action::ShowView(View::Samples)),
            (char('3'), Action::ShowView(View::Model)),
            (char('4'), Action::ShowView(View::Results)),
            (char('5'), Action::ShowView(View::Browser)),
            (key(KeyCode::Tab), Action::NextView),
            (key(KeyCode::BackTab), Action::PreviousView),
        ],
        keys: "1-5, Tab, Shift-Tab",
        help: "switch view",
        footer: &[("Tab/1-5", "views")],
    },
    Command {
        scope: Scope::Everywhere,
        bindings: &[(char('?'), Action::Help)],
        keys: "?",
        help: "this help",
        footer: &[("?", "help")],
    },
    Command {
        scope: Scope::Everywhere,
        bindings: &[(char('q'), Action::Quit), (ctrl('c'), Action::Quit)],
        keys: "q, Ctrl-C",
        help: "quit",
        footer: &[("q", "quit")],
    },
    Command {
        scope: Scope::In(View::Training),
        bindings: &[(char('p'), Action::Pause)],
        keys: "p",
        help: "pause / resume",
        // The footer writes "resume" while paused.
        footer: &[("p", "pause")],
    },
    Command {
        scope: Scope::In(View::Training),
        bindings: &[(char('s'), Action::Stop)],
        keys: "s",
        help: "stop after a final checkpoint",
        footer: &[("s", "stop")],
    },
    Command {
        scope: Scope::In(View::Training),
        bindings: &[(char('c'), Action::SaveCheckpoint)],
        keys: "c",
        help: "save a checkpoint now",
        footer: &[("c", "checkpoint")],
    },
    Command {
        scope: Scope::In(View::Model),
        bindings: &[
            (key(KeyCode::Down), Action::Down),
            (char('j'), Action::Down),
            (key(KeyCode::Up), Action::Up),
            (char('k'), Action::Up),
            (key(KeyCode::PageDown), Action::PageDown),
            (key(KeyCode::PageUp), Action::PageUp),
            (key(KeyCode::Home), Action::First),
            (key(KeyCode::End), Action::Last),
        ],
        keys: "↑ ↓ j k, PgUp PgDn, Home End",
        help: "scroll",
        footer: &[("↑↓", "scroll"), ("PgUp/PgDn", "page")],
    },
    Command {
        scope: Scope::In(View::Browser),
        bindings: &[
            (key(KeyCode::Right), Action::Next),
            (char('l'), Action::Next),
            (char(' '), Action::Next),
            (key(KeyCode::Left), Action::Previous),
            (char('h'), Action::Previous),
            // By rows, in the grid (see `g`).
            (key(KeyCode::Down), Action::Down),
            (char('j'), Action::Down),
            (key(KeyCode::Up), Action::Up),
            (char('k'), Action::Up),
            (key(KeyCode::PageDown), Action::PageDown),
            (key(KeyCode::PageUp), Action::PageUp),
            (key(KeyCode::Home), Action::First),
            (key(KeyCode::End), Action::Last),
        ],
        keys: "← → h l, PgUp PgDn, Home End",
        help: "previous / next / page",
        footer: &[("←→", "prev/next")],
    },
    Command {
        scope: Scope::In(View::Browser),
        bindings: &[(char('x'), Action::NextMisclassified)],
        keys: "x",
        help: "next misclassified",
        footer: &[("x", "next wrong")],
    },
    Command {
        scope: Scope::In(View::Browser),
        bindings: &[
            (char('f'), Action::FilterTruth),
            (char('F'), Action::FilterPredicted),
        ],
        keys: "f / F",
        help: "filter by true / predicted class",
        footer: &[("f/F", "filter")],
    },
    Command {
        scope: Scope::In(View::Browser),
        bindings: &[(char('o'), Action::CycleOrder)],
        keys: "o",
        help: "order: file, confidence, loss",
        footer: &[("o", "order")],
    },
    Command {
        scope: Scope::In(View::Browser),
        bindings: &[
            (char('v'), Action::ToggleOverlay),
            (char('+'), Action::MoreOpaque),
            (char('='), Action::MoreOpaque),
            (char('-'), Action::LessOpaque),
        ],
        keys: "v, + -",
        help: "heatmap overlay, its opacity",
        footer: &[("v", "overlay"), ("+/-", "alpha")],
    },
    Command {
        scope: Scope::In(View::Browser),
        bindings: &[(char('g'), Action::ToggleGrid)],
        keys: "g",
        help: "one picture / grid (↑ ↓ move by rows)",
        footer: &[("g", "grid")],
    },
    Command {
        scope: Scope::In(View::Browser),
        bindings: &[(char('w'), Action::SavePicture)],
        keys: "w",
        help: "save the picture in the run directory",
        footer: &[("w", "save")],
    },
    Command {
        scope: Scope::In(View::Browser),
        bindings: &[
            (char('m'), Action::CycleMethod),
            (char('y'), Action::CycleLayer),
            (char('e'), Action::CycleExplainedClass),
        ],
        keys: "m, y, e",
        help: "explanation method, layer, class",
        footer: &[("m", "method"), ("y", "layer"), ("e", "class")],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (key(KeyCode::Left), Action::PanLeft),
            (key(KeyCode::Right), Action::PanRight),
            (key(KeyCode::Up), Action::PanUp),
            (key(KeyCode::Down), Action::PanDown),
        ],
        keys: "← → ↑ ↓",
        help: "pan (a quarter of the view)",
        footer: &[("←→↑↓", "pan")],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (char('+'), Action::ZoomIn),
            (char('='), Action::ZoomIn),
            (char('-'), Action::ZoomOut),
            (char('0'), Action::ZoomFit),
        ],
        keys: "+ = / -, 0",
        help: "zoom in / out (twice, keeping the centre), whole photo",
        footer: &[("+/-", "zoom")],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (char('n'), Action::Next),
            (key(KeyCode::PageDown), Action::Next),
            (char(' '), Action::Next),
            (char('p'), Action::Previous),
            (key(KeyCode::PageUp), Action::Previous),
            (key(KeyCode::Home), Action::First),
            (key(KeyCode::End), Action::Last),
        ],
        keys: "n p, PgDn PgUp, Home End",
        help: "next / previous photo (by crack fraction), first / last",
        footer: &[("n/p", "photo")],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (char(']'), Action::NextRegion),
            (char('['), Action::PreviousRegion),
        ],
        keys: "] [",
        help: "next / previous crack region, largest first (zooms to it)",
        footer: &[("[/]", "region")],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (char('m'), Action::ToggleMap),
            (char('k'), Action::ToggleMask),
            (char('w'), Action::ToggleWindows),
            (char('r'), Action::ToggleRegions),
        ],
        keys: "m, k, w, r",
        help: "crack map, mask, crack windows, crack regions: on / off",
        footer: &[
            ("m", "map"),
            ("k", "mask"),
            ("w", "windows"),
            ("r", "regions"),
        ],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (char('t'), Action::ToggleTruth),
            (char('g'), Action::ToggleSweep),
        ],
        keys: "t, g",
        help: "errors against true masks, threshold sweep: on / off",
        footer: &[("t", "errors"), ("g", "sweep")],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[(char('?'), Action::Help)],
        keys: "?",
        help: "this help",
        footer: &[("?", "help")],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (char('q'), Action::Quit),
            (ctrl('c'), Action::Quit),
            (key(KeyCode::Esc), Action::Quit),
        ],
        keys: "q, Ctrl-C, Esc",
        help: "quit",
        footer: &[("q", "quit")],
    },
    // After quit: its Ctrl-C must be found before the plain `c` of crack.
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (char('l'), Action::LabelSuggested),
            (char('L'), Action::LabelTopScored),
            (char('y'), Action::LabelTypical),
            (char('.'), Action::LabelUnderCursor),
        ],
        keys: "l, L, y, .",
        help: "label: suggested / top-scored / typical / at the centre",
        footer: &[("l/L/y/.", "label")],
    },
    Command {
        scope: Scope::In(View::Scan),
        bindings: &[
            (char('c'), Action::LabelCrack),
            (char('x'), Action::LabelNoCrack),
            (char('s'), Action::LabelSkip),
            (char('u'), Action::LabelUndo),
            (key(KeyCode::Backspace), Action::LabelUndo),
        ],
        keys: "c, x, s, u Backspace",
        help: "labelling: crack, no crack, skip; undo",
        footer: &[
            ("c", "crack"),
            ("x", "no crack"),
            ("s", "skip"),
            ("u", "undo"),
        ],
    },
];

impl Command {
    pub fn applies_in(&self, view: View) -> bool {
        match self.scope {
            Scope::Everywhere => view.is_tab(),
            Scope::In(v) => v == view,
        }
    }
}

/// What `key` does in `view`, if anything.
pub fn action_for(view: View, key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    COMMANDS
        .iter()
        .filter(|command| command.applies_in(view))
        .flat_map(|command| command.bindings)
        .find(|(k, _)| k.code == key.code && (!k.ctrl || ctrl))
        .map(|&(_, action)| action)
}

/// The commands of `view` alone (not those that work everywhere), in table order.
pub fn view_commands(view: View) -> impl Iterator<Item = &'static Command> {
    COMMANDS
        .iter()
        .filter(move |command| command.scope == Scope::In(view))
}

/// The commands that work in every view.
pub fn global_commands() -> impl Iterator<Item = &'static Command> {
    COMMANDS
        .iter()
        .filter(|command| command.scope == Scope::Everywhere)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn global_keys_win_and_ctrl_is_needed_only_where_listed() {
        let none = KeyModifiers::NONE;
        let c = press(KeyCode::Char('c'), none);
        let ctrl_c = press(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(View::Training, c), Some(Action::SaveCheckpoint));
        assert_eq!(action_for(View::Training, ctrl_c), Some(Action::Quit));
        assert_eq!(action_for(View::Browser, c), None);
        let shift_f = press(KeyCode::Char('F'), KeyModifiers::SHIFT);
        assert_eq!(
            action_for(View::Browser, shift_f),
            Some(Action::FilterPredicted)
        );
        assert_eq!(
            action_for(View::Samples, press(KeyCode::Char('3'), none)),
            Some(Action::ShowView(View::Model))
        );
    }

    /// A key listed twice in one view would make the second entry dead.
    #[test]
    fn no_key_means_two_things_in_one_view() {
        for view in View::ALL {
            let keys: Vec<Key> = COMMANDS
                .iter()
                .filter(|c| c.applies_in(view))
                .flat_map(|c| c.bindings.iter().map(|(k, _)| *k))
                .collect();
            for (i, k) in keys.iter().enumerate() {
                assert!(!keys[i + 1..].contains(k), "{k:?} twice in {view:?}");
            }
        }
    }

    #[test]
    fn the_scan_view_has_its_own_keys_and_none_twice() {
        let none = KeyModifiers::NONE;
        let scan = |code| action_for(View::Scan, press(code, none));
        assert_eq!(scan(KeyCode::Char('k')), Some(Action::ToggleMask));
        assert_eq!(scan(KeyCode::Char('=')), Some(Action::ZoomIn));
        assert_eq!(scan(KeyCode::PageDown), Some(Action::Next));
        assert_eq!(scan(KeyCode::Char(']')), Some(Action::NextRegion));
        assert_eq!(scan(KeyCode::Char('1')), None, "no training views here");
        assert_eq!(
            action_for(View::Scan, press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        // The training dashboard never sees the scan view's keys.
        assert_eq!(action_for(View::Model, press(KeyCode::Left, none)), None);
        let keys: Vec<Key> = view_commands(View::Scan)
            .flat_map(|c| c.bindings.iter().map(|(k, _)| *k))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[i + 1..].contains(k), "{k:?} twice in the scan view");
        }
    }

    #[test]
    fn every_command_has_keys_help_and_a_footer_entry() {
        for command in COMMANDS {
            assert!(!command.bindings.is_empty() && !command.keys.is_empty());
            assert!(!command.help.is_empty() && !command.footer.is_empty());
        }
    }
}
