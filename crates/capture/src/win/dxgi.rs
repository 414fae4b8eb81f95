//! DXGI Desktop Duplication: the compositor hands over a monitor's picture only when it
//! changed, so an unchanged screen costs one call that times out at once. Not available
//! under Wine ("not implemented") or in some remote sessions; `super::capturer` falls back
//! to GDI then. Exercised only on real Windows, not in this project's CI.

use windows::Win32::Foundation::{HMODULE, RECT};
use windows::Win32::Graphics::Direct3D::D3D_DRIVER_TYPE_UNKNOWN;
use windows::Win32::Graphics::Direct3D11::{
    D3D11_CPU_ACCESS_READ, D3D11_CREATE_DEVICE_BGRA_SUPPORT, D3D11_MAP_READ,
    D3D11_MAPPED_SUBRESOURCE, D3D11_SDK_VERSION, D3D11_TEXTURE2D_DESC, D3D11_USAGE_STAGING,
    D3D11CreateDevice, ID3D11Device, ID3D11DeviceContext, ID3D11Texture2D,
};
use windows::Win32::Graphics::Dxgi::{
    CreateDXGIFactory1, DXGI_ERROR_ACCESS_LOST, DXGI_ERROR_NOT_FOUND, DXGI_ERROR_WAIT_TIMEOUT,
    DXGI_OUTDUPL_FRAME_INFO, IDXGIAdapter1, IDXGIFactory1, IDXGIOutput1, IDXGIOutputDuplication,
    IDXGIResource,
};
use windows::Win32::Graphics::Gdi::HMONITOR;
use windows::core::Interface;

use super::canvas::Canvas;
use super::failed;
use crate::{Capture, CaptureError, Capturer};

pub(crate) struct DuplicationCapturer {
    device: ID3D11Device,
    context: ID3D11DeviceContext,
    output: IDXGIOutput1,
    /// None while the system refuses duplication (the secure desktop of a UAC prompt or
    /// the lock screen is up): tried again at each capture.
    duplication: Option<IDXGIOutputDuplication>,
    staging: Option<ID3D11Texture2D>,
    area: RECT,
    canvas: Canvas,
    /// The monitor the customer chose (`None`: the primary one), looked for again when
    /// duplication is lost: gone, the share ends.
    which: Option<super::Chosen>,
    /// The whole picture is asked for again (`refresh`), changed or not.
    refresh: bool,
    /// A frame was handed out, so the canvas holds a real picture.
    shown: bool,
}

impl DuplicationCapturer {
    pub(crate) fn new(
        (monitor, area): (HMONITOR, RECT),
        which: Option<super::Chosen>,
    ) -> Result<Self, CaptureError> {
        // SAFETY: COM calls on interfaces this function holds; out-parameters are locals.
        unsafe {
            let factory: IDXGIFactory1 = CreateDXGIFactory1().map_err(|e| failed("DXGI", e))?;
            let mut adapter_index = 0;
            loop {
                let adapter: IDXGIAdapter1 = match factory.EnumAdapters1(adapter_index) {
                    Ok(adapter) => adapter,
                    Err(e) if e.code() == DXGI_ERROR_NOT_FOUND => {
                        return Err(CaptureError::Platform(
                            "no graphics adapter shows the monitor".into(),
                        ));
                    }
                    Err(e) => return Err(failed("listing graphics adapters", e)),
                };
                adapter_index += 1;
                let mut output_index = 0;
                while let Ok(output) = adapter.EnumOutputs(output_index) {
                    output_index += 1;
                    let Ok(desc) = output.GetDesc() else { continue };
                    if desc.Monitor != monitor {
                        continue;
                    }
                    let output: IDXGIOutput1 =
                        output.cast().map_err(|e| failed("DXGI 1.1 output", e))?;
                    let mut device = None;
                    let mut context = None;
                    D3D11CreateDevice(
                        &adapter,
                        D3D_DRIVER_TYPE_UNKNOWN,
                        HMODULE::default(),
                        D3D11_CREATE_DEVICE_BGRA_SUPPORT,
                        None,
                        D3D11_SDK_VERSION,
                        Some(&mut device),
                        None,
                        Some(&mut context),
                    )
                    .map_err(|e| failed("Direct3D 11", e))?;
                    let (Some(device), Some(context)) = (device, context) else {
                        return Err(CaptureError::Platform("Direct3D 11 gave no device".into()));
                    };
                    let duplication = output
                        .DuplicateOutput(&device)
                        .map_err(|e| failed("Desktop Duplication", e))?;
                    let canvas = Canvas::new(area.right - area.left, area.bottom - area.top)?;
                    return Ok(Self {
                        device,
                        context,
                        output,
                        duplication: Some(duplication),
                        staging: None,
                        area,
                        canvas,
                        which,
                        refresh: false,
                        shown: false,
                    });
                }
            }
        }
    }

    /// Copy the acquired desktop texture into the canvas.
    fn copy(&mut self, resource: &IDXGIResource) -> Result<(), CaptureError> {
        // SAFETY: COM calls on live interfaces; the mapped rows are read within the map's
        // row pitch and the canvas's size.
        unsafe {
            let texture: ID3D11Texture2D = resource.cast().map_err(|e| failed("DXGI frame", e))?;
            let mut desc = D3D11_TEXTURE2D_DESC::default();
            texture.GetDesc(&mut desc);
            if self.staging.is_none() {
                desc.Usage = D3D11_USAGE_STAGING;
                desc.BindFlags = 0;
                desc.CPUAccessFlags = D3D11_CPU_ACCESS_READ.0 as u32;
                desc.MiscFlags = 0;
                let mut staging = None;
                self.device
                    .CreateTexture2D(&desc, None, Some(&mut staging))
                    .map_err(|e| failed("a staging texture", e))?;
                self.staging = staging;
            }
            let Some(staging) = &self.staging else {
                return Err(CaptureError::Platform("no staging texture".into()));
            };
            self.context.CopyResource(staging, &texture);
            let mut mapped = D3D11_MAPPED_SUBRESOURCE::default();
            self.context
                .Map(staging, 0, D3D11_MAP_READ, 0, Some(&mut mapped))
                .map_err(|e| failed("reading the desktop texture", e))?;
            let stride = self.canvas.stride();
            let rows = (desc.Height as usize).min(self.canvas.height as usize);
            let row_bytes = stride.min(desc.Width as usize * 4);
            let pixels = self.canvas.pixels_mut();
            for row in 0..rows {
                let from = std::slice::from_raw_parts(
                    mapped
                        .pData
                        .cast::<u8>()
                        .add(row * mapped.RowPitch as usize),
                    row_bytes,
                );
                pixels[row * stride..row * stride + row_bytes].copy_from_slice(from);
            }
            self.context.Unmap(staging, 0);
        }
        Ok(())
    }
}

impl Capturer for DuplicationCapturer {
    fn refresh(&mut self) {
        self.refresh = true;
    }

    fn capture(&mut self) -> Result<Capture<'_>, CaptureError> {
        let duplication = match &self.duplication {
            Some(duplication) => duplication.clone(),
            None => {
                // SAFETY: a COM call on live interfaces.
                match unsafe { self.output.DuplicateOutput(&self.device) } {
                    Ok(duplication) => {
                        self.staging = None;
                        self.duplication = Some(duplication.clone());
                        duplication
                    }
                    // The chosen monitor is gone (unplugged, rearranged): the share ends.
                    Err(_) if self.which.is_some() && super::monitor(self.which).is_err() => {
                        return Ok(Capture::Ended(crate::Gone::MonitorDisconnected));
                    }
                    // Still the secure desktop: nothing new to show meanwhile.
                    Err(_) => return Ok(Capture::Unchanged),
                }
            }
        };
        let mut info = DXGI_OUTDUPL_FRAME_INFO::default();
        let mut resource: Option<IDXGIResource> = None;
        // SAFETY: out-parameters are locals; every acquired frame is released.
        let acquired = unsafe { duplication.AcquireNextFrame(0, &mut info, &mut resource) };
        match acquired {
            Ok(()) => {}
            Err(e) if e.code() == DXGI_ERROR_WAIT_TIMEOUT => {
                // Nothing new; the canvas still holds the last picture handed out,
                // pointer included, unless none has been yet.
                if self.refresh && self.shown {
                    self.refresh = false;
                    return Ok(Capture::Frame(self.canvas.frame()));
                }
                return Ok(Capture::Unchanged);
            }
            Err(e) if e.code() == DXGI_ERROR_ACCESS_LOST => {
                // A mode change or the secure desktop: duplicate again at the next look.
                self.duplication = None;
                return Ok(Capture::Unchanged);
            }
            Err(e) => return Err(failed("Desktop Duplication", e)),
        }
        let copied = match &resource {
            Some(resource) => self.copy(resource),
            None => Ok(()),
        };
        // SAFETY: releases the frame acquired above.
        let _ = unsafe { duplication.ReleaseFrame() };
        copied?;
        self.canvas
            .draw_cursor((self.area.left, self.area.top), None);
        let asked_again = self.refresh && self.shown;
        if !self.canvas.changed() && !asked_again {
            return Ok(Capture::Unchanged);
        }
        self.refresh = false;
        self.shown = true;
        Ok(Capture::Frame(self.canvas.frame()))
    }
}
