//! Image preprocessing per model, in one table: resize the shorter side, centre crop
//! to the input size, then per-channel `(pixel - mean) / std` in the model's channel
//! order, written as NCHW `f32`.
//!
//! The table ([`PRESETS`], [`Preprocess`]) needs no decoder; applying it to an image
//! (`Preprocess::apply`, `preprocess`) needs the `image` feature (on with the
//! default `cli`), which brings the `image` crate's JPEG and PNG decoders.
//!
//! | preset | input | resize | channels | normalisation | as in |
//! |---|---|---|---|---|---|
//! | `nin_cifar10` | 32 | 32 | RGB | CIFAR-10 mean/std | common CIFAR training |
//! | `googlenet` | 224 | 256 | RGB | ImageNet mean/std | torchvision |
//! | `googlenet_caffe` | 224 | 256 | BGR | 0-255 minus (104, 117, 123) | Caffe `bvlc_googlenet` |
//! | `bn_inception` | 224 | 256 | BGR | 0-255 minus (104, 117, 128) | Cadene `pretrainedmodels` |
//! | `inception_v3`, `inception_v4`, `inception_resnet_v2` | 299 | 342 | RGB | x / 127.5 - 1, to [-1, 1] | TF-slim, timm |
//! | `inception_resnet_v1` | 160 | 160 | RGB | (x - 127.5) / 128 | facenet-pytorch `fixed_image_standardization` |
//!
//! ```
//! # #[cfg(feature = "image")] {
//! use incept::preprocess::Preprocess;
//! let p = Preprocess::for_model("inception_v3").unwrap();
//! let image = image::DynamicImage::new_rgb8(640, 480);
//! let x = p.apply(&image);
//! assert_eq!(x.len(), 3 * 299 * 299);
//! assert_eq!(x[0], -1.0); // black is -1 in [-1, 1] scaling
//! # }
//! ```

#[cfg(feature = "image")]
use image::DynamicImage;
#[cfg(feature = "image")]
use image::imageops::{self, FilterType};

#[cfg(feature = "image")]
use crate::error::{Error, Result};

/// The order of the three colour channels the model expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelOrder {
    /// Red, green, blue (torchvision, timm, TF).
    Rgb,
    /// Blue, green, red (Caffe and models ported from it).
    Bgr,
}

/// What a model's output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Class logits (softmax gives probabilities).
    Logits,
    /// A feature vector (an embedding), not classes.
    Embedding,
}

/// How to turn an image into a model's input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// The model (built-in name) this preset is for.
    pub model: &'static str,
    /// Side of the square input, in pixels.
    pub size: u32,
    /// The shorter side is resized to this before the centre crop (`>= size`).
    pub resize: u32,
    /// Channel order of the input tensor.
    pub order: ChannelOrder,
    /// Per-channel mean, on the 0-255 scale, in `order`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, on the 0-255 scale, in `order`.
    pub std: [f32; 3],
    /// What the model's output is.
    pub output: OutputKind,
}

const IMAGENET_MEAN: [f32; 3] = [0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0];
const IMAGENET_STD: [f32; 3] = [0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0];
const CIFAR10_MEAN: [f32; 3] = [0.4914 * 255.0, 0.4822 * 255.0, 0.4465 * 255.0];
const CIFAR10_STD: [f32; 3] = [0.2470 * 255.0, 0.2435 * 255.0, 0.2616 * 255.0];

const fn preset(
    model: &'static str,
    size: u32,
    resize: u32,
    order: ChannelOrder,
    mean: [f32; 3],
    std: [f32; 3],
) -> Preprocess {
    Preprocess { model, size, resize, order, mean, std, output: OutputKind::Logits }
}

/// `[-1, 1]` scaling, the TF-slim convention: `x / 127.5 - 1`.
const fn minus_one_to_one(model: &'static str) -> Preprocess {
    preset(model, 299, 342, ChannelOrder::Rgb, [127.5; 3], [127.5; 3])
}

/// The preset of every built-in model.
pub const PRESETS: &[Preprocess] = &[
    preset("nin_cifar10", 32, 32, ChannelOrder::Rgb, CIFAR10_MEAN, CIFAR10_STD),
    preset("googlenet", 224, 256, ChannelOrder::Rgb, IMAGENET_MEAN, IMAGENET_STD),
    preset("googlenet_caffe", 224, 256, ChannelOrder::Bgr, [104.0, 117.0, 123.0], [1.0; 3]),
    preset("bn_inception", 224, 256, ChannelOrder::Bgr, [104.0, 117.0, 128.0], [1.0; 3]),
    minus_one_to_one("inception_v3"),
    minus_one_to_one("inception_v4"),
    minus_one_to_one("inception_resnet_v2"),
    Preprocess {
        output: OutputKind::Embedding,
        ..preset("inception_resnet_v1", 160, 160, ChannelOrder::Rgb, [127.5; 3], [128.0; 3])
    },
];

impl Preprocess {
    /// The preset of a built-in model.
    pub fn for_model(name: &str) -> Option<&'static Preprocess> {
        PRESETS.iter().find(|p| p.model == name)
    }

    /// A preset for a model known only by its input side (a model file): the first
    /// built-in preset of that size (299: `[-1, 1]`, 224: ImageNet mean/std, 160:
    /// facenet, 32: CIFAR-10).
    pub fn for_input_size(size: usize) -> Option<&'static Preprocess> {
        PRESETS.iter().find(|p| p.size as usize == size)
    }

    /// Number of `f32` one image becomes: `3 x size x size`.
    pub fn input_len(&self) -> usize {
        3 * self.size as usize * self.size as usize
    }

    /// Preprocesses one image into `out`, `3 x size x size` floats in CHW order.
    /// Panics if `out` has another length. Needs the `image` feature.
    #[cfg(feature = "image")]
    #[cfg_attr(docsrs, doc(cfg(feature = "image")))]
    pub fn apply_into(&self, image: &DynamicImage, out: &mut [f32]) {
        assert_eq!(out.len(), self.input_len(), "output buffer length");
        let rgb = image.to_rgb8();
        let (w, h) = rgb.dimensions();
        // Resize the shorter side to `resize` (at least `size` on each side after rounding).
        let scale = self.resize as f64 / w.min(h).max(1) as f64;
        let side = |v: u32| ((v as f64 * scale).round() as u32).max(self.size);
        let (rw, rh) = (side(w), side(h));
        let resized = if (rw, rh) == (w, h) { rgb } else { imageops::resize(&rgb, rw, rh, FilterType::Triangle) };
        let (x0, y0) = ((rw - self.size) / 2, (rh - self.size) / 2);
        let crop = imageops::crop_imm(&resized, x0, y0, self.size, self.size).to_image();
        let plane = self.input_len() / 3;
        let source = match self.order {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        for (c, &src) in source.iter().enumerate() {
            let (mean, inv_std) = (self.mean[c], 1.0 / self.std[c]);
            for (o, p) in out[c * plane..(c + 1) * plane].iter_mut().zip(crop.pixels()) {
                *o = (p.0[src] as f32 - mean) * inv_std;
            }
        }
    }

    /// Preprocesses one image: `3 x size x size` floats in CHW order. Needs the `image`
    /// feature.
    #[cfg(feature = "image")]
    #[cfg_attr(docsrs, doc(cfg(feature = "image")))]
    pub fn apply(&self, image: &DynamicImage) -> Vec<f32> {
        let mut out = vec![0.0; self.input_len()];
        self.apply_into(image, &mut out);
        out
    }
}

/// Preprocesses `image` for the built-in model `model` (see [`PRESETS`]). Needs the
/// `image` feature.
#[cfg(feature = "image")]
#[cfg_attr(docsrs, doc(cfg(feature = "image")))]
pub fn preprocess(model: &str, image: &DynamicImage) -> Result<Vec<f32>> {
    let p = Preprocess::for_model(model).ok_or_else(|| Error::UnknownModel {
        name: model.to_string(),
        known: PRESETS.iter().map(|p| p.model).collect::<Vec<_>>().join(", "),
    })?;
    Ok(p.apply(image))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::BUILTIN;
    #[cfg(feature = "image")]
    use image::{Rgb, RgbImage};

    #[test]
    fn every_builtin_model_has_a_preset_of_its_input_size() {
        for m in BUILTIN {
            let p = Preprocess::for_model(m.name).unwrap_or_else(|| panic!("{} has no preset", m.name));
            let g = (m.build)().unwrap();
            let d = g.dims(g.input);
            assert_eq!((d.c, d.h, d.w), (3, p.size as usize, p.size as usize), "{}", m.name);
            assert!(p.resize >= p.size);
        }
        assert_eq!(PRESETS.len(), BUILTIN.len());
    }

    #[test]
    #[cfg(feature = "image")]
    fn centre_crop_channel_order_and_scaling() {
        // 2:1 landscape: left third red, middle blue, right third green; the centre
        // crop of the resized image is all blue.
        let img = RgbImage::from_fn(96, 48, |x, _| match x {
            0..32 => Rgb([255, 0, 0]),
            32..64 => Rgb([0, 0, 255]),
            _ => Rgb([0, 255, 0]),
        });
        let img = DynamicImage::ImageRgb8(img);
        let v3 = Preprocess::for_model("inception_v3").unwrap().apply(&img);
        let (plane, centre) = (299 * 299, 149 * 299 + 149);
        assert_eq!([v3[centre], v3[plane + centre], v3[2 * plane + centre]], [-1.0, -1.0, 1.0]);
        let caffe = Preprocess::for_model("googlenet_caffe").unwrap().apply(&img);
        let (plane, centre) = (224 * 224, 112 * 224 + 112);
        assert_eq!([caffe[centre], caffe[plane + centre], caffe[2 * plane + centre]], [255.0 - 104.0, -117.0, -123.0]);
        let facenet = preprocess("inception_resnet_v1", &img).unwrap();
        assert_eq!(facenet.len(), 3 * 160 * 160);
        assert_eq!(facenet[2 * 160 * 160 + 160 * 80 + 80], (255.0 - 127.5) / 128.0);
        assert!(preprocess("resnet50", &img).is_err());
    }

    #[test]
    #[cfg(feature = "image")]
    fn small_and_odd_images_still_fill_the_input() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(7, 3, Rgb([10, 20, 30])));
        for p in PRESETS {
            let x = p.apply(&img);
            assert_eq!(x.len(), p.input_len());
            assert!(x.iter().all(|v| v.is_finite()));
        }
    }
}
