//! [`define_event!`](crate::define_event): how every catalogue type is declared.

/// Declares an event type: the struct with the base fields and its [`Event`](crate::Event)
/// implementation; with the `schema` feature also `schemars::JsonSchema` and `Example`.
///
/// ```
/// use agentbus_events::define_event;
///
/// define_event! {
///     /// Emitted when a widget spins.
///     #[event(type = "plugin.widget_spun", domain = Plugin, base = plugin)]
///     pub struct WidgetSpunEvent {
///         /// How fast, in turns per second.
///         pub speed: f64,
///         /// Optional label.
///         #[serde(default, skip_serializing_if = "Option::is_none")]
///         pub label: Option<String>,
///     }
/// }
///
/// let event = WidgetSpunEvent { speed: 2.0, ..Default::default() };
/// assert_eq!(<WidgetSpunEvent as agentbus_events::Event>::TYPE, "plugin.widget_spun");
/// ```
///
/// `base = event` gives the base fields ([`EventMeta`](crate::EventMeta), flattened into
/// `meta`); `base = plugin` adds the plugin fields ([`PluginInfo`](crate::PluginInfo),
/// flattened into `plugin`). Every field type must implement `Default`, `Clone`, `Debug`,
/// `PartialEq` and serde's traits; with the `schema` feature (which any crate in the build
/// may turn on) also `schemars::JsonSchema` and `Example`.
#[macro_export]
macro_rules! define_event {
    (
        $(#[doc = $doc:literal])*
        #[event(type = $ty:literal, domain = $domain:ident, base = event)]
        pub struct $name:ident {
            $(
                $(#[$fattr:meta])*
                pub $field:ident : $fty:ty
            ),* $(,)?
        }
    ) => {
        $crate::__event_struct! {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = concat!("Wire `type`: `", $ty, "`.")]
        #[derive(Clone, Debug, Default, PartialEq, $crate::__serde::Serialize, $crate::__serde::Deserialize)]
        #[serde(crate = "agentbus_events::__serde")]
        pub struct $name {
            /// The base fields every event carries.
            #[serde(flatten)]
            pub meta: $crate::EventMeta,
            $( $(#[$fattr])* pub $field: $fty, )*
        }
        }

        impl $crate::Event for $name {
            const TYPE: &'static str = $ty;
            const NAME: &'static str = stringify!($name);
            const DOMAIN: $crate::Domain = $crate::Domain::$domain;
            fn meta(&self) -> &$crate::EventMeta {
                &self.meta
            }
            fn meta_mut(&mut self) -> &mut $crate::EventMeta {
                &mut self.meta
            }
        }

        $crate::__if_schema! {
        impl $crate::Example for $name {
            fn example() -> Self {
                Self {
                    meta: $crate::Example::example(),
                    $( $field: $crate::Example::example(), )*
                }
            }
            fn minimal() -> Self {
                Self {
                    meta: $crate::Example::minimal(),
                    $( $field: $crate::Example::minimal(), )*
                }
            }
        }
        }
    };
    (
        $(#[doc = $doc:literal])*
        #[event(type = $ty:literal, domain = $domain:ident, base = plugin)]
        pub struct $name:ident {
            $(
                $(#[$fattr:meta])*
                pub $field:ident : $fty:ty
            ),* $(,)?
        }
    ) => {
        $crate::__event_struct! {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = concat!("Wire `type`: `", $ty, "`. A plugin event: carries `plugin_name` and `plugin_version`.")]
        #[derive(Clone, Debug, Default, PartialEq, $crate::__serde::Serialize, $crate::__serde::Deserialize)]
        #[serde(crate = "agentbus_events::__serde")]
        pub struct $name {
            /// The base fields every event carries.
            #[serde(flatten)]
            pub meta: $crate::EventMeta,
            /// The plugin that emitted the event.
            #[serde(flatten)]
            pub plugin: $crate::PluginInfo,
            $( $(#[$fattr])* pub $field: $fty, )*
        }
        }

        impl $crate::Event for $name {
            const TYPE: &'static str = $ty;
            const NAME: &'static str = stringify!($name);
            const DOMAIN: $crate::Domain = $crate::Domain::$domain;
            fn meta(&self) -> &$crate::EventMeta {
                &self.meta
            }
            fn meta_mut(&mut self) -> &mut $crate::EventMeta {
                &mut self.meta
            }
        }

        $crate::__if_schema! {
        impl $crate::Example for $name {
            fn example() -> Self {
                Self {
                    meta: $crate::Example::example(),
                    plugin: $crate::Example::example(),
                    $( $field: $crate::Example::example(), )*
                }
            }
            fn minimal() -> Self {
                Self {
                    meta: $crate::Example::minimal(),
                    plugin: $crate::Example::minimal(),
                    $( $field: $crate::Example::minimal(), )*
                }
            }
        }
        }
    };
}

/// Emits the struct it is given, deriving `schemars::JsonSchema` for it when this crate has
/// the `schema` feature (decided when agentbus-events is compiled, not in the calling crate).
#[cfg(feature = "schema")]
#[doc(hidden)]
#[macro_export]
macro_rules! __event_struct {
    ($($item:tt)*) => {
        #[derive($crate::__schemars::JsonSchema)]
        #[schemars(crate = "agentbus_events::__schemars")]
        $($item)*
    };
}

/// Emits the struct it is given, deriving `schemars::JsonSchema` for it when this crate has
/// the `schema` feature (decided when agentbus-events is compiled, not in the calling crate).
#[cfg(not(feature = "schema"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __event_struct {
    ($($item:tt)*) => {
        $($item)*
    };
}

/// Emits the items it is given only when this crate has the `schema` feature.
#[cfg(feature = "schema")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_schema {
    ($($item:tt)*) => {
        $($item)*
    };
}

/// Emits the items it is given only when this crate has the `schema` feature.
#[cfg(not(feature = "schema"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_schema {
    ($($item:tt)*) => {};
}
