<#-- twostep: keycloak.v2's login-otp.ftl plus an instruction, a visible "use a backup code" button
     (posts tryAnotherWay=on, like the parent's "Try another way" link) and "lost your phone?" help. -->
<#import "template.ftl" as layout>
<#import "field.ftl" as field>
<#import "buttons.ftl" as buttons>
<#assign twostepHasBackupCodes = false>
<#assign twostepCanAskAdmin = false>
<#if auth?has_content && auth.showTryAnotherWayLink()>
    <#list (auth.authenticationSelections)![] as selection>
        <#if selection.displayName == "recovery-authn-codes-display-name">
            <#assign twostepHasBackupCodes = true>
        </#if>
        <#-- The twostep-help-request authenticator ("I lost my phone: ask an administrator"). -->
        <#if selection.displayName == "twostep-help-request-display-name">
            <#assign twostepCanAskAdmin = true>
        </#if>
    </#list>
</#if>
<@layout.registrationLayout displayMessage=!messagesPerField.existsError('totp'); section>
<!-- template: login-otp.ftl (twostep) -->

    <#if section="header">
        ${msg("twostepOtpTitle")}
    <#elseif section="form">
        <p id="twostep-otp-instruction" class="twostep-intro">${msg("twostepOtpInstruction")}</p>
        <form id="kc-otp-login-form" class="${properties.kcFormClass!}" onsubmit="login.disabled = true; return true;" action="${url.loginAction}" method="post">
            <input id="selectedCredentialId" type="hidden" name="selectedCredentialId" value="${otpLogin.selectedCredentialId!''}">
            <#if otpLogin.userOtpCredentials?size gt 1>
                <div class="${properties.kcFormGroupClass!}">
                    <p id="twostep-otp-choose-device">${msg("twostepOtpChooseDevice")}</p>
                    <div class="${properties.kcInputWrapperClass!}" role="radiogroup" aria-labelledby="twostep-otp-choose-device">
                        <#list otpLogin.userOtpCredentials as otpCredential>
                            <div id="kc-otp-credential-${otpCredential?index}" role="radio" tabindex="0"
                                    aria-checked="${(otpCredential.id == otpLogin.selectedCredentialId!'')?c}"
                                    class="${properties.kcLoginOTPListClass!}<#if otpCredential.id == otpLogin.selectedCredentialId!''> ${properties.kcLoginOTPListSelectedClass!}</#if>"
                                    onclick="toggleOTP(${otpCredential?index}, '${otpCredential.id}')"
                                    onkeydown="if (event.key === ' ' || event.key === 'Enter') { event.preventDefault(); toggleOTP(${otpCredential?index}, '${otpCredential.id}'); }">
                                <span class="${properties.kcLoginOTPListItemHeaderClass!}">
                                    <span class="${properties.kcLoginOTPListItemIconBodyClass!}">
                                      <i class="${properties.kcLoginOTPListItemIconClass!}" aria-hidden="true"></i>
                                    </span>
                                    <span class="${properties.kcLoginOTPListItemTitleClass!}">${otpCredential.userLabel}</span>
                                </span>
                            </div>
                        </#list>
                    </div>
                </div>
            </#if>

            <@field.input name="otp" label=msg("loginOtpOneTime") autocomplete="one-time-code" fieldName="totp" autofocus=true />

            <@buttons.loginButton />
        </form>

        <section id="twostep-lost-phone" class="twostep-help" aria-labelledby="twostep-lost-phone-title">
            <h2 id="twostep-lost-phone-title">${msg("twostepOtpLostPhoneTitle")}</h2>
            <#if twostepHasBackupCodes>
                <p>${msg("twostepOtpLostPhoneBackup")}</p>
                <form id="twostep-backup-code-form" action="${url.loginAction}" method="post" novalidate="novalidate">
                    <input type="hidden" name="tryAnotherWay" value="on"/>
                    <button type="submit" id="twostep-use-backup-code"
                            class="${properties.kcButtonSecondaryClass!} ${properties.kcButtonBlockClass!}">${msg("twostepOtpUseBackupCode")}</button>
                </form>
                <p>${msg(twostepCanAskAdmin?then("twostepOtpLostPhoneAskAdmin", "twostepOtpLostPhoneAdmin"))}</p>
            <#elseif !twostepCanAskAdmin>
                <p>${msg("twostepOtpLostPhoneNoBackup")}</p>
            </#if>
            <#if twostepCanAskAdmin>
                <#if !twostepHasBackupCodes><p>${msg("twostepOtpLostPhoneAskAdmin")}</p></#if>
                <#-- "Try another way" lists the option; the chooser is one click away. -->
                <form id="twostep-ask-admin-form" action="${url.loginAction}" method="post" novalidate="novalidate">
                    <input type="hidden" name="tryAnotherWay" value="on"/>
                    <button type="submit" id="twostep-ask-admin"
                            class="${properties.kcButtonSecondaryClass!} ${properties.kcButtonBlockClass!}">${msg("twostepOtpAskAdmin")}</button>
                </form>
            </#if>
        </section>
        <script>
            <#outputformat "JavaScript">
            function toggleOTP(index, value) {
                document.getElementById("selectedCredentialId").value = value;
                Array.from(document.getElementsByClassName(${properties.kcLoginOTPListSelectedClass!?c})).map(i => {
                    i.classList.remove(${properties.kcLoginOTPListSelectedClass!?c});
                    i.setAttribute("aria-checked", "false");
                });
                const selected = document.getElementById("kc-otp-credential-" + index);
                selected.classList.add(${properties.kcLoginOTPListSelectedClass!?c});
                selected.setAttribute("aria-checked", "true");
            }
            </#outputformat>
        </script>
    </#if>
</@layout.registrationLayout>
