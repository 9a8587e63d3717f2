//! Builders for every network of the Inception family.
//!
//! Each builder returns the inference graph (auxiliary heads dropped, their
//! parameter prefixes recorded as ignored) with parameter names following the
//! reference implementation's state-dict keys.

mod blocks;
mod bn_inception;
mod googlenet;
mod inception_resnet_v1;
mod inception_resnet_v2;
mod inception_v3;
mod inception_v4;
mod nin;

use crate::error::{Error, Result};
use crate::graph::Graph;

/// A built-in model: its name, what it is, and its builder.
pub struct BuiltinModel {
    /// The name used on the command line and in `Model::builtin`.
    pub name: &'static str,
    /// One line on what it is and which reference it matches.
    pub summary: &'static str,
    /// Builds the inference graph.
    pub build: fn() -> Result<Graph>,
}

/// Every built-in model.
pub const BUILTIN: &[BuiltinModel] = &[
    BuiltinModel {
        name: "nin_cifar10",
        summary: "Network-in-Network for CIFAR-10 (Lin et al. 2014), 32x32",
        build: nin::nin_cifar10,
    },
    BuiltinModel {
        name: "googlenet",
        summary: "GoogLeNet / Inception v1 (Szegedy et al. 2014), torchvision googlenet without aux heads, 224x224",
        build: googlenet::googlenet,
    },
    BuiltinModel {
        name: "googlenet_caffe",
        summary: "GoogLeNet as in the paper (LRN, 5x5 branches, no BN), Caffe bvlc_googlenet, 224x224",
        build: googlenet::googlenet_caffe,
    },
    BuiltinModel {
        name: "bn_inception",
        summary: "BN-Inception (Ioffe & Szegedy 2015), Cadene pretrainedmodels bninception, 224x224",
        build: bn_inception::bn_inception,
    },
    BuiltinModel {
        name: "inception_v3",
        summary: "Inception v3 (Szegedy et al. 2015), torchvision inception_v3 without AuxLogits, 299x299",
        build: inception_v3::inception_v3,
    },
    BuiltinModel {
        name: "inception_v4",
        summary: "Inception v4 (Szegedy et al. 2016), timm inception_v4, 299x299",
        build: inception_v4::inception_v4,
    },
    BuiltinModel {
        name: "inception_resnet_v1",
        summary: "Inception-ResNet v1 (Szegedy et al. 2016), facenet-pytorch 512-d face embedding, 160x160",
        build: inception_resnet_v1::inception_resnet_v1,
    },
    BuiltinModel {
        name: "inception_resnet_v2",
        summary: "Inception-ResNet v2 (Szegedy et al. 2016), timm inception_resnet_v2, 299x299",
        build: inception_resnet_v2::inception_resnet_v2,
    },
];

/// Builds the built-in model called `name`.
pub fn build(name: &str) -> Result<Graph> {
    match BUILTIN.iter().find(|m| m.name == name) {
        Some(m) => (m.build)(),
        None => Err(Error::UnknownModel { name: name.to_string(), known: names().join(", ") }),
    }
}

/// The names of the built-in models.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|m| m.name).collect()
}
