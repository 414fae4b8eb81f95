//! The platform behind the agent: one backend bundles what the agent needs of a desktop —
//! capture, the list of windows, where a point of the shared surface is on the screen, and
//! input injection — chosen at run time. The rest of the agent never names a platform.
//!
//! A macOS backend would be one more module here.

use std::sync::Arc;

use tandem_capture::{CaptureError, Capturer, MonitorInfo, Source, WindowInfo};
use tandem_input::{InjectError, Injector, Surface};

/// An injector and the locator of the shared surface it injects into.
pub type InputParts = (Box<dyn Injector>, Box<dyn Surface>);

pub trait Backend: Send + Sync {
    /// What the agent captures with, for the customer ("X11 display :1", "Windows (GDI)").
    fn describe(&self) -> String;
    /// The windows the customer can choose to share.
    fn windows(&self) -> Result<Vec<WindowInfo>, CaptureError>;
    /// The monitors the customer can choose to share, the primary first.
    fn monitors(&self) -> Result<Vec<MonitorInfo>, CaptureError>;
    /// A capturer for `source`, made on the thread that will use it.
    fn capturer(&self, source: Source) -> Result<Box<dyn Capturer>, CaptureError>;
    /// An injector and the shared surface's locator, made on the input thread.
    fn input(&self, source: Source) -> Result<InputParts, InjectError>;
}

/// The backend for this machine. `display` names the X display on Linux.
pub fn choose(display: Option<String>) -> anyhow::Result<Arc<dyn Backend>> {
    #[cfg(windows)]
    {
        let _ = display;
        Ok(Arc::new(windows::Windows))
    }
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        let display = display.or_else(|| std::env::var("DISPLAY").ok());
        anyhow::ensure!(
            display.as_deref().is_some_and(|d| !d.is_empty()),
            "no X display to share: run this in an X11 session, or pass --display :N \
             (Wayland sessions are not supported yet)"
        );
        Ok(Arc::new(x11::X11 { display }))
    }
    #[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
    {
        let _ = display;
        anyhow::bail!("this platform has no screen capture backend yet")
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
mod x11 {
    use tandem_capture::{
        CaptureError, Capturer, Locator, MonitorInfo, Source, WindowInfo, X11Capturer,
    };
    use tandem_input::{EnigoInjector, InjectError, Surface};

    /// An X display: XShm/Composite/Damage capture, XTEST input.
    pub struct X11 {
        pub display: Option<String>,
    }

    struct Located(Locator);

    impl Surface for Located {
        fn locate(&mut self, x: f64, y: f64) -> Option<(i32, i32)> {
            self.0.locate(x, y)
        }
    }

    impl super::Backend for X11 {
        fn describe(&self) -> String {
            format!("X11 display {}", self.display.as_deref().unwrap_or("?"))
        }

        fn windows(&self) -> Result<Vec<WindowInfo>, CaptureError> {
            tandem_capture::windows(self.display.as_deref())
        }

        fn monitors(&self) -> Result<Vec<MonitorInfo>, CaptureError> {
            tandem_capture::monitors(self.display.as_deref())
        }

        fn capturer(&self, source: Source) -> Result<Box<dyn Capturer>, CaptureError> {
            Ok(Box::new(X11Capturer::new(self.display.as_deref(), source)?))
        }

        fn input(&self, source: Source) -> Result<super::InputParts, InjectError> {
            let injector = EnigoInjector::open(self.display.as_deref())?;
            let locator = Locator::new(self.display.as_deref(), source)
                .map_err(|e| InjectError::Open(e.to_string()))?;
            Ok((Box::new(injector), Box::new(Located(locator))))
        }
    }
}

#[cfg(windows)]
mod windows {
    use tandem_capture::win::{self, Locator};
    use tandem_capture::{CaptureError, Capturer, MonitorInfo, Source, WindowInfo};
    use tandem_input::{EnigoInjector, InjectError, Surface};

    /// The Windows desktop: Desktop Duplication or GDI capture, `SendInput`.
    pub struct Windows;

    struct Located(Locator);

    impl Surface for Located {
        fn locate(&mut self, x: f64, y: f64) -> Option<(i32, i32)> {
            self.0.locate(x, y)
        }
    }

    impl super::Backend for Windows {
        fn describe(&self) -> String {
            format!("Windows ({})", win::desktop_path())
        }

        fn windows(&self) -> Result<Vec<WindowInfo>, CaptureError> {
            win::windows()
        }

        fn monitors(&self) -> Result<Vec<MonitorInfo>, CaptureError> {
            win::monitors()
        }

        fn capturer(&self, source: Source) -> Result<Box<dyn Capturer>, CaptureError> {
            win::capturer(source)
        }

        fn input(&self, source: Source) -> Result<super::InputParts, InjectError> {
            win::dpi_aware();
            let injector = EnigoInjector::open(None)?;
            let locator = Locator::new(source).map_err(|e| InjectError::Open(e.to_string()))?;
            Ok((Box::new(injector), Box::new(Located(locator))))
        }
    }
}
