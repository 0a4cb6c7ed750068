//! A trained model in formats other tools read: [`onnx`], the classifier with its
//! class-activation map for deployment runtimes.

pub mod onnx;
